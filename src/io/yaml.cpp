#include "io/yaml.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "core/error.h"

namespace igan {

namespace {

using nlohmann::json;

std::string trim(const std::string& s) {
    const size_t b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return "";
    const size_t e = s.find_last_not_of(" \t");
    return s.substr(b, e - b + 1);
}

class YamlReader {
public:
    YamlReader(const std::string& text, const std::string& path) : text_(text), path_(path) {}

    json parse() {
        json root = json::object();
        json* section = nullptr;  // the mapping that indented lines belong to
        json* pending = nullptr;  // a key without a value: block-list items may follow
        int section_indent = -1;
        std::istringstream in(text_);
        std::string raw;
        while (std::getline(in, raw)) {
            ++line_;
            if (!raw.empty() && raw.back() == '\r') raw.pop_back();
            const std::string content = trim(strip_comment(raw));
            if (content.empty() || content == "---" || content == "...") continue;
            const size_t indent = raw.find_first_not_of(' ');
            if (raw[indent] == '\t') fail("tabs are not allowed for indentation");
            if (content[0] == '-' && (content.size() == 1 || content[1] == ' ')) {
                if (!pending || indent == 0) fail("a list item without a key above it");
                if (pending->is_null()) *pending = json::array();
                pending->push_back(scalar(trim(content.substr(1))));
                continue;
            }
            const size_t colon = key_end(content);
            std::string key = trim(content.substr(0, colon));
            const std::string value = trim(content.substr(colon + 1));
            if (key.size() >= 2 && (key[0] == '"' || key[0] == '\'') && key.back() == key[0])
                key = key.substr(1, key.size() - 2);
            if (key.empty()) fail("empty key");
            if (indent == 0) {
                section_indent = -1;
                if (value.empty()) {
                    root[key] = json::object();
                    section = &root[key];
                    pending = nullptr;
                } else {
                    root[key] = scalar(value);
                    section = pending = nullptr;
                }
                continue;
            }
            if (!section) fail("indented line outside a section");
            if (section_indent < 0) section_indent = int(indent);
            if (int(indent) != section_indent)
                fail("nested mappings are not supported (only `section:` then `  key: value`)");
            if (section->contains(key)) fail("duplicate key '" + key + "'");
            (*section)[key] = value.empty() ? json() : scalar(value);
            pending = value.empty() ? &(*section)[key] : nullptr;
        }
        return root;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw Error(path_ + ":" + std::to_string(line_) + ": " + what +
                    " (igan reads the flat YAML of the original configs/model/*.yaml)");
    }

    // A '#' starts a comment outside quotes when it begins the line or follows whitespace.
    static std::string strip_comment(const std::string& line) {
        char quote = 0;
        for (size_t i = 0; i < line.size(); ++i) {
            const char c = line[i];
            if (quote) {
                if (c == quote) quote = 0;
            } else if (c == '"' || c == '\'') {
                quote = c;
            } else if (c == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
                return line.substr(0, i);
            }
        }
        return line;
    }

    size_t key_end(const std::string& content) const {
        char quote = 0;
        for (size_t i = 0; i < content.size(); ++i) {
            const char c = content[i];
            if (quote) {
                if (c == quote) quote = 0;
            } else if (c == '"' || c == '\'') {
                quote = c;
            } else if (c == ':' && (i + 1 == content.size() || content[i + 1] == ' ')) {
                return i;
            }
        }
        fail("expected `key: value`");
    }

    json scalar(const std::string& v) const {
        if (v.empty()) return json();
        if (v[0] == '{') fail("flow mappings are not supported");
        if (v[0] == '[') {
            if (v.back() != ']') fail("unterminated list");
            json list = json::array();
            const std::string body = trim(v.substr(1, v.size() - 2));
            if (body.empty()) return list;
            std::string item;
            char quote = 0;
            for (char c : body + ",") {
                if (quote) {
                    if (c == quote) quote = 0;
                    item += c;
                } else if (c == '"' || c == '\'') {
                    quote = c;
                    item += c;
                } else if (c == '[' || c == '{') {
                    fail("nested lists are not supported");
                } else if (c == ',') {
                    list.push_back(scalar(trim(item)));
                    item.clear();
                } else {
                    item += c;
                }
            }
            return list;
        }
        if (v[0] == '"' || v[0] == '\'') {
            if (v.size() < 2 || v.back() != v[0]) fail("unterminated string");
            std::string s = v.substr(1, v.size() - 2), out;
            for (size_t i = 0; i < s.size(); ++i) {
                if (v[0] == '"' && s[i] == '\\' && i + 1 < s.size()) {
                    const char e = s[++i];
                    out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
                } else if (v[0] == '\'' && s[i] == '\'' && i + 1 < s.size() && s[i + 1] == '\'') {
                    out += s[++i];
                } else {
                    out += s[i];
                }
            }
            return out;
        }
        static const char* kTrue[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
        static const char* kFalse[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
        for (const char* t : kTrue)
            if (v == t) return true;
        for (const char* f : kFalse)
            if (v == f) return false;
        if (v == "~" || v == "null" || v == "Null" || v == "NULL") return json();
        const char* begin = v.c_str();
        char* end = nullptr;
        errno = 0;
        const long long i = std::strtoll(begin, &end, 10);
        if (end && *end == 0 && errno == 0) return int64_t(i);
        if (v.find_first_of("0123456789") != std::string::npos &&
            v.find_first_not_of("+-.0123456789eE") == std::string::npos) {
            const double d = std::strtod(begin, &end);
            if (end && *end == 0 && std::isfinite(d)) return d;
        }
        return v;
    }

    const std::string& text_;
    std::string path_;
    int line_ = 0;
};

}  // namespace

json parse_flat_yaml(const std::string& text, const std::string& path) {
    return YamlReader(text, path).parse();
}

}  // namespace igan
