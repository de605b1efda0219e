#include "io/torch_pickle.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>

#include "core/error.h"
#include "io/zip_reader.h"

// Storage bytes are copied verbatim into tensors.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "reading PyTorch checkpoints needs a little-endian host");

namespace igan {

namespace {

using Kind = PyObject::Kind;

// The legacy format starts with this number, pickled (torch/serialization.py MAGIC_NUMBER).
constexpr unsigned char kLegacyMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
constexpr int64_t kLegacyProtocol = 1001;
constexpr size_t kMaxGlobalName = 200;
constexpr size_t kMaxShown = 120;

// Text from the file, printable and capped, for messages.
std::string printable(std::string_view text) {
    std::string out;
    for (unsigned char c : text.substr(0, kMaxShown)) {
        if (c >= 0x20 && c < 0x7f && c != '\'') {
            out += char(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out + (text.size() > kMaxShown ? "..." : "");
}

std::string shown(std::string_view text) { return "'" + printable(text) + "'"; }

struct StorageType {
    const char* name;  // without the "torch." module
    at::ScalarType dtype;
};

constexpr StorageType kStorageTypes[] = {
    {"DoubleStorage", at::kDouble}, {"FloatStorage", at::kFloat},   {"HalfStorage", at::kHalf},
    {"BFloat16Storage", at::kBFloat16}, {"LongStorage", at::kLong}, {"IntStorage", at::kInt},
    {"ShortStorage", at::kShort},   {"CharStorage", at::kChar},     {"ByteStorage", at::kByte},
    {"BoolStorage", at::kBool},     {"UntypedStorage", at::kByte},
};

const StorageType* storage_type(const std::string& global) {
    if (global.rfind("torch.", 0) != 0) return nullptr;
    for (const auto& t : kStorageTypes)
        if (global.compare(6, std::string::npos, t.name) == 0) return &t;
    return nullptr;
}

// Everything the unpickler may name. Nothing here runs code: each entry is implemented below
// as a pure data transformation.
constexpr const char* kCallables[] = {
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "_codecs.encode",  // how protocol 2 writes `bytes`
    "numpy.dtype",     // numpy scalars, e.g. a best FID stored as numpy.float64
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
};

bool allowed_global(const std::string& name) {
    if (storage_type(name)) return true;
    for (const char* c : kCallables)
        if (name == c) return true;
    return false;
}

const char* opcode_name(unsigned char op) {
    switch (op) {
        case 0x81: return "NEWOBJ";
        case 0x92: return "NEWOBJ_EX";
        case 'i': return "INST";
        case 'o': return "OBJ";
        case 0x82: case 0x83: case 0x84: return "EXT";
        case 'P': return "PERSID";
        case 'I': return "INT";
        case 'L': return "LONG";
        case 'F': return "FLOAT";
        case 'S': return "STRING";
        case 'V': return "UNICODE";
        case 'p': return "PUT";
        case 'g': return "GET";
        case 0x8f: return "EMPTY_SET";
        case 0x90: return "ADDITEMS";
        case 0x91: return "FROZENSET";
        case 0x96: return "BYTEARRAY8";
        case 0x97: return "NEXT_BUFFER";
        case 0x98: return "READONLY_BUFFER";
        default: return nullptr;
    }
}

int64_t element_size(at::ScalarType t) { return int64_t(c10::elementSize(t)); }

struct StorageRecord {
    std::string key;
    at::ScalarType dtype = at::kByte;
    int64_t numel = 0;
    int root = -1;             // legacy storage views: the storage they view; -1 for roots
    int64_t view_offset = 0;   // in elements of the root
    uint64_t file_offset = 0;  // roots, legacy format: where the bytes start in the file
    const ZipEntry* entry = nullptr;  // roots, ZIP format
    bool located = false;
};

}  // namespace

struct TorchCheckpoint::Impl {
    std::string name;
    PickleLimits limits;
    std::shared_ptr<const void> owner;  // keeps `bytes` alive
    std::string_view bytes;
    std::unique_ptr<ZipArchive> zip;
    std::string prefix;  // "<archive name>/"
    bool legacy = false;
    std::deque<PyObject> arena;
    PyObject* root = nullptr;
    std::vector<TensorInfo> tensors;
    std::vector<StorageRecord> storages;
    std::map<std::string, int> storage_by_key;
    uint64_t pushes = 0;

    [[noreturn]] void fail(const std::string& what) const { throw Error(name + ": " + what); }
};

namespace {

using Impl = TorchCheckpoint::Impl;

enum class PersistentIds { kNone, kZip, kLegacy };

// A pickle virtual machine for the data subset of protocols 2-5.
class Unpickler {
public:
    Unpickler(Impl& ck, std::string_view data, std::string what, PersistentIds ids)
        : ck_(ck), data_(data), what_(std::move(what)), ids_(ids) {}

    PyObject* load() {
        for (;;) {
            op_pos_ = pos_;
            const unsigned char op = u8();
            switch (op) {
                case 0x80: {  // PROTO
                    const int proto = u8();
                    if (proto > 5) fail("unsupported pickle protocol " + std::to_string(proto));
                    break;
                }
                case 0x95: take(8); break;  // FRAME: a hint for buffering only
                case '.': {                 // STOP
                    PyObject* result = pop();
                    return result;
                }
                case '(':  // MARK
                    if (int(marks_.size()) >= ck_.limits.max_depth)
                        fail("nested deeper than " + std::to_string(ck_.limits.max_depth) + " levels");
                    marks_.push_back(stack_.size());
                    break;
                case '0':  // POP
                    if (stack_.size() > floor()) {
                        stack_.pop_back();
                    } else {
                        pop_mark();
                    }
                    break;
                case '1': pop_mark(); break;  // POP_MARK
                case '2': push(top()); break;  // DUP
                case 'N': push(make(Kind::kNone)); break;
                case 0x88: push_bool(true); break;   // NEWTRUE
                case 0x89: push_bool(false); break;  // NEWFALSE
                case 'J': push_int(int32_t(uint32_t(le(4)))); break;  // BININT
                case 'K': push_int(int64_t(le(1))); break;             // BININT1
                case 'M': push_int(int64_t(le(2))); break;             // BININT2
                case 0x8a: push_long(le(1)); break;                    // LONG1
                case 0x8b: {                                           // LONG4
                    const int64_t n = int32_t(uint32_t(le(4)));
                    if (n < 0 || n > 256) fail("integer of " + std::to_string(n) + " bytes");
                    push_long(uint64_t(n));
                    break;
                }
                case 'G': {  // BINFLOAT, big-endian
                    const std::string_view b = take(8);
                    uint64_t bits = 0;
                    for (char c : b) bits = bits << 8 | static_cast<unsigned char>(c);
                    PyObject* o = make(Kind::kFloat);
                    std::memcpy(&o->real, &bits, 8);
                    push(o);
                    break;
                }
                case 'X': push_text(Kind::kString, le(4)); break;   // BINUNICODE
                case 0x8c: push_text(Kind::kString, le(1)); break;  // SHORT_BINUNICODE
                case 0x8d: push_text(Kind::kString, le(8)); break;  // BINUNICODE8
                case 'B': push_text(Kind::kBytes, le(4)); break;    // BINBYTES
                case 'C': push_text(Kind::kBytes, le(1)); break;    // SHORT_BINBYTES
                case 0x8e: push_text(Kind::kBytes, le(8)); break;   // BINBYTES8
                case 'U': push_text(Kind::kString, le(1)); break;   // SHORT_BINSTRING
                case 'T': {                                          // BINSTRING
                    const int64_t n = int32_t(uint32_t(le(4)));
                    if (n < 0) fail("negative string length");
                    push_text(Kind::kString, uint64_t(n));
                    break;
                }
                case ')': push(make(Kind::kTuple)); break;  // EMPTY_TUPLE
                case 't': {                                   // TUPLE
                    PyObject* t = make(Kind::kTuple);
                    t->items = pop_mark();
                    push(t);
                    break;
                }
                case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
                    PyObject* t = make(Kind::kTuple);
                    t->items.resize(op - 0x84);
                    for (size_t i = t->items.size(); i-- > 0;) t->items[i] = pop();
                    push(t);
                    break;
                }
                case ']': push(make(Kind::kList)); break;  // EMPTY_LIST
                case 'l': {                                  // LIST
                    PyObject* l = make(Kind::kList);
                    l->items = pop_mark();
                    push(l);
                    break;
                }
                case 'a': {  // APPEND
                    PyObject* v = pop();
                    target(Kind::kList, "APPEND")->items.push_back(v);
                    break;
                }
                case 'e': {  // APPENDS
                    auto items = pop_mark();
                    auto& dst = target(Kind::kList, "APPENDS")->items;
                    dst.insert(dst.end(), items.begin(), items.end());
                    break;
                }
                case '}': push(make(Kind::kDict)); break;  // EMPTY_DICT
                case 'd': {                                  // DICT
                    PyObject* d = make(Kind::kDict);
                    add_pairs(d, pop_mark());
                    push(d);
                    break;
                }
                case 's': {  // SETITEM
                    PyObject* v = pop();
                    PyObject* k = pop();
                    target(Kind::kDict, "SETITEM")->entries.emplace_back(k, v);
                    break;
                }
                case 'u': {  // SETITEMS
                    auto items = pop_mark();
                    add_pairs(target(Kind::kDict, "SETITEMS"), std::move(items));
                    break;
                }
                case 'c': {  // GLOBAL
                    std::string module = line();
                    std::string name = line();
                    push(global(module, name));
                    break;
                }
                case 0x93: {  // STACK_GLOBAL
                    PyObject* name = pop();
                    PyObject* module = pop();
                    if (!module->is_string() || !name->is_string())
                        fail("STACK_GLOBAL needs two strings");
                    push(global(module->text, name->text));
                    break;
                }
                case 'R': {  // REDUCE
                    PyObject* args = pop();
                    PyObject* callable = pop();
                    push(reduce(*callable, *args));
                    break;
                }
                case 'b': {  // BUILD
                    PyObject* state = pop();
                    build(*top(), *state);
                    break;
                }
                case 'Q': push(persistent(*pop())); break;  // BINPERSID
                case 'q': put(le(1)); break;                // BINPUT
                case 'r': put(le(4)); break;                // LONG_BINPUT
                case 0x94: put(memo_count_); break;         // MEMOIZE
                case 'h': get(le(1)); break;                // BINGET
                case 'j': get(le(4)); break;                // LONG_BINGET
                default: {
                    const char* name = opcode_name(op);
                    char buf[16];
                    std::snprintf(buf, sizeof buf, "0x%02x", op);
                    fail(std::string("unsupported pickle opcode ") + buf +
                         (name ? std::string(" (") + name + ")" : std::string()) +
                         ": not something torch.save writes for tensors and containers");
                }
            }
        }
    }

    size_t position() const { return pos_; }

private:
    [[noreturn]] void fail(const std::string& what) const {
        ck_.fail(what + " (" + what_ + ", byte " + std::to_string(op_pos_) + ")");
    }

    // --- input ---
    std::string_view take(uint64_t n) {
        if (n > data_.size() - pos_) fail("truncated pickle: needs " + std::to_string(n) + " more bytes");
        const std::string_view out = data_.substr(pos_, n);
        pos_ += n;
        return out;
    }
    unsigned char u8() { return static_cast<unsigned char>(take(1)[0]); }
    uint64_t le(int n) {
        const std::string_view b = take(n);
        uint64_t v = 0;
        for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(b[i]);
        return v;
    }
    std::string line() {
        const size_t end = data_.find('\n', pos_);
        if (end == std::string_view::npos) fail("truncated pickle: unterminated GLOBAL name");
        if (end - pos_ > kMaxGlobalName) fail("GLOBAL name too long");
        std::string out(data_.substr(pos_, end - pos_));
        pos_ = end + 1;
        return out;
    }

    // --- stack ---
    PyObject* make(Kind kind) {
        ck_.arena.emplace_back();
        ck_.arena.back().kind = kind;
        return &ck_.arena.back();
    }
    void push(PyObject* o) {
        if (++ck_.pushes > ck_.limits.max_pushes)
            fail("more than " + std::to_string(ck_.limits.max_pushes) +
                 " pickled values; not a checkpoint, or too large to be one");
        stack_.push_back(o);
    }
    size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
    PyObject* top() {
        if (stack_.size() <= floor()) fail("pickle stack underflow");
        return stack_.back();
    }
    PyObject* pop() {
        PyObject* o = top();
        stack_.pop_back();
        return o;
    }
    std::vector<PyObject*> pop_mark() {
        if (marks_.empty()) fail("pickle MARK missing");
        std::vector<PyObject*> items(stack_.begin() + marks_.back(), stack_.end());
        stack_.resize(marks_.back());
        marks_.pop_back();
        return items;
    }
    PyObject* target(Kind kind, const char* op) {
        PyObject* t = top();
        if (t->kind != kind)
            fail(std::string(op) + " on a " + kind_name(t->kind) + ", expected a " + kind_name(kind));
        return t;
    }
    void add_pairs(PyObject* dict, std::vector<PyObject*> items) {
        if (items.size() % 2) fail("odd number of items for a dict");
        for (size_t i = 0; i < items.size(); i += 2) dict->entries.emplace_back(items[i], items[i + 1]);
    }

    void push_bool(bool b) {
        PyObject* o = make(Kind::kBool);
        o->boolean = b;
        push(o);
    }
    void push_int(int64_t v) {
        PyObject* o = make(Kind::kInt);
        o->integer = v;
        push(o);
    }
    // Little-endian two's complement of n bytes; beyond 8 bytes it stays raw (kBigInt).
    void push_long(uint64_t n) {
        const std::string_view b = take(n);
        if (n > 8) {
            PyObject* o = make(Kind::kBigInt);
            o->text.assign(b);
            push(o);
            return;
        }
        uint64_t v = 0;
        for (size_t i = n; i-- > 0;) v = v << 8 | static_cast<unsigned char>(b[i]);
        if (n > 0 && n < 8 && (static_cast<unsigned char>(b[n - 1]) & 0x80)) v |= ~uint64_t(0) << (8 * n);
        push_int(int64_t(v));
    }
    void push_text(Kind kind, uint64_t n) {
        const std::string_view b = take(n);
        PyObject* o = make(kind);
        o->text.assign(b);
        push(o);
    }

    // --- memo ---
    void put(uint64_t index) {
        if (index >= ck_.limits.max_pushes) fail("memo index " + std::to_string(index) + " out of range");
        if (index >= memo_.size()) memo_.resize(index + 1, nullptr);
        if (!memo_[index]) ++memo_count_;
        memo_[index] = top();
    }
    void get(uint64_t index) {
        if (index >= memo_.size() || !memo_[index])
            fail("memo entry " + std::to_string(index) + " is missing");
        push(memo_[index]);
    }

    // --- globals and calls ---
    PyObject* global(const std::string& module, const std::string& name) {
        if (module.size() > kMaxGlobalName || name.size() > kMaxGlobalName)
            fail("global name too long");
        const std::string full = module + "." + name;
        if (!allowed_global(full))
            fail("refusing global " + shown(full) +
                 ": a checkpoint reader only rebuilds tensors, containers and numbers");
        PyObject* g = make(Kind::kGlobal);
        g->text = full;
        return g;
    }

    static bool is_int(const PyObject* o) { return o->kind == Kind::kInt || o->kind == Kind::kBool; }

    std::vector<int64_t> int_tuple(const PyObject& o, const char* what) {
        if (o.kind != Kind::kTuple && o.kind != Kind::kList) fail(std::string(what) + " is not a tuple");
        if (int(o.items.size()) > ck_.limits.max_tensor_dims)
            fail(std::string("tensor with ") + std::to_string(o.items.size()) + " dimensions");
        std::vector<int64_t> out;
        for (const PyObject* i : o.items) {
            if (i->kind != Kind::kInt || i->integer < 0)
                fail(std::string(what) + " holds something other than a non-negative integer");
            out.push_back(i->integer);
        }
        return out;
    }

    PyObject* rebuild_tensor(const std::vector<PyObject*>& a, bool v2) {
        if (a.size() < 4 || a[0]->kind != Kind::kStorage || a[1]->kind != Kind::kInt)
            fail("malformed tensor arguments");
        if (v2) {
            if (a.size() < 6 || a.size() > 7 || a[4]->kind != Kind::kBool)
                fail("malformed _rebuild_tensor_v2 arguments");
            if (a[5]->kind != Kind::kDict || !a[5]->entries.empty())
                fail("tensor with backward hooks; save the state_dict() instead");
            if (a.size() == 7 && a[6]->kind != Kind::kDict && a[6]->kind != Kind::kNone)
                fail("malformed tensor metadata");
        } else if (a.size() != 4) {
            fail("malformed _rebuild_tensor arguments");
        }
        TensorInfo t;
        t.storage = a[0]->index;
        t.storage_offset = a[1]->integer;
        t.sizes = int_tuple(*a[2], "tensor size");
        t.strides = int_tuple(*a[3], "tensor stride");
        t.requires_grad = v2 && a[4]->boolean;
        const StorageRecord& s = ck_.storages[t.storage];
        t.dtype = s.dtype;
        if (t.sizes.size() != t.strides.size()) fail("tensor size and stride differ in length");
        if (t.storage_offset < 0 || t.storage_offset > s.numel) fail("tensor offset outside its storage");
        // numel and the last element touched must fit the storage (overflow-checked).
        int64_t numel = 1, last = t.storage_offset;
        bool overflow = false;
        for (size_t i = 0; i < t.sizes.size(); ++i) {
            overflow |= __builtin_mul_overflow(numel, t.sizes[i], &numel);
            if (t.sizes[i] == 0) continue;
            int64_t step = 0;
            overflow |= __builtin_mul_overflow(t.sizes[i] - 1, t.strides[i], &step);
            overflow |= __builtin_add_overflow(last, step, &last);
        }
        if (!overflow && numel > 0 && (last >= s.numel || numel > s.numel)) overflow = true;
        if (overflow) {
            std::ostringstream m;
            m << "tensor of size " << c10::IntArrayRef(t.sizes) << " and stride "
              << c10::IntArrayRef(t.strides) << " at offset " << t.storage_offset
              << " does not fit its storage of " << s.numel << " elements";
            fail(m.str());
        }
        PyObject* o = make(Kind::kTensor);
        o->index = int(ck_.tensors.size());
        ck_.tensors.push_back(std::move(t));
        return o;
    }

    PyObject* reduce(const PyObject& callable, const PyObject& args) {
        if (callable.kind != Kind::kGlobal) fail(std::string("REDUCE on a ") + kind_name(callable.kind));
        if (args.kind != Kind::kTuple) fail("REDUCE arguments are not a tuple");
        const std::string& f = callable.text;
        const auto& a = args.items;
        if (f == "collections.OrderedDict") {
            if (!a.empty()) fail("OrderedDict with constructor arguments");
            return make(Kind::kDict);
        }
        if (f == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(a, true);
        if (f == "torch._utils._rebuild_tensor") return rebuild_tensor(a, false);
        if (f == "torch._utils._rebuild_parameter" ||
            f == "torch._utils._rebuild_parameter_with_state") {
            const size_t n = f == "torch._utils._rebuild_parameter" ? 3 : 4;
            if (a.size() != n || a[0]->kind != Kind::kTensor || a[1]->kind != Kind::kBool)
                fail("malformed " + f + " arguments");
            if (a[2]->kind != Kind::kDict || !a[2]->entries.empty())
                fail("parameter with backward hooks; save the state_dict() instead");
            return a[0];
        }
        if (f == "_codecs.encode") {
            if (a.size() != 2 || !a[0]->is_string() || !a[1]->is_string() ||
                (a[1]->text != "latin1" && a[1]->text != "latin-1"))
                fail("_codecs.encode other than bytes in latin1");
            PyObject* o = make(Kind::kBytes);
            o->text = latin1(a[0]->text);
            return o;
        }
        if (f == "numpy.dtype") {
            if (a.empty() || !a[0]->is_string() || numpy_size(a[0]->text) == 0)
                fail("numpy dtype other than a number or bool");
            PyObject* o = make(Kind::kNumpyDType);
            o->text = a[0]->text;
            return o;
        }
        if (f == "numpy.core.multiarray.scalar" || f == "numpy._core.multiarray.scalar")
            return numpy_scalar(a);
        fail(shown(f) + " cannot be called");
    }

    // UTF-8 text whose code points are all below 256, as bytes.
    std::string latin1(const std::string& utf8) {
        std::string out;
        for (size_t i = 0; i < utf8.size(); ++i) {
            const unsigned char c = utf8[i];
            if (c < 0x80) {
                out += char(c);
            } else if ((c == 0xC2 || c == 0xC3) && i + 1 < utf8.size() &&
                       (static_cast<unsigned char>(utf8[i + 1]) & 0xC0) == 0x80) {
                out += char(((c & 0x03) << 6) | (static_cast<unsigned char>(utf8[++i]) & 0x3F));
            } else {
                fail("bytes that are not latin1");
            }
        }
        return out;
    }

    static size_t numpy_size(const std::string& code) {
        static const std::map<std::string, size_t> sizes = {
            {"f2", 2}, {"f4", 4}, {"f8", 8}, {"i1", 1}, {"i2", 2}, {"i4", 4}, {"i8", 8},
            {"u1", 1}, {"u2", 2}, {"u4", 4}, {"u8", 8}, {"b1", 1}};
        auto it = sizes.find(code);
        return it == sizes.end() ? 0 : it->second;
    }

    PyObject* numpy_scalar(const std::vector<PyObject*>& a) {
        if (a.size() != 2 || a[0]->kind != Kind::kNumpyDType ||
            (a[1]->kind != Kind::kBytes && a[1]->kind != Kind::kString))
            fail("malformed numpy scalar");
        const std::string& code = a[0]->text;
        const std::string& raw = a[1]->text;
        const size_t n = numpy_size(code);
        if (raw.size() != n) fail("numpy scalar of the wrong size");
        uint64_t bits = 0;
        std::memcpy(&bits, raw.data(), n);
        if (code[0] == 'f') {
            PyObject* o = make(Kind::kFloat);
            if (n == 8) {
                std::memcpy(&o->real, &bits, 8);
            } else if (n == 4) {
                float v;
                std::memcpy(&v, &bits, 4);
                o->real = v;
            } else {
                o->real = double(c10::Half(uint16_t(bits), c10::Half::from_bits()));
            }
            return o;
        }
        if (code == "b1") {
            PyObject* o = make(Kind::kBool);
            o->boolean = bits != 0;
            return o;
        }
        if (code[0] == 'i' && n < 8 && (bits >> (8 * n - 1)) & 1) bits |= ~uint64_t(0) << (8 * n);
        if (code == "u8" && bits > uint64_t(INT64_MAX)) fail("numpy uint64 scalar out of range");
        PyObject* o = make(Kind::kInt);
        o->integer = int64_t(bits);
        return o;
    }

    void build(PyObject& obj, const PyObject& state) {
        // OrderedDict attributes (a state_dict's `_metadata`) are not needed; numpy dtypes
        // carry their byte order, which must be little-endian or not applicable.
        if (obj.kind == Kind::kDict) {
            if (state.kind != Kind::kDict && state.kind != Kind::kTuple && state.kind != Kind::kNone)
                fail("malformed dict state");
            return;
        }
        if (obj.kind == Kind::kNumpyDType) {
            if (state.kind != Kind::kTuple || state.items.size() < 2 || !state.items[1]->is_string() ||
                state.items[1]->text == ">")
                fail("numpy dtype that is not little-endian");
            return;
        }
        fail(std::string("BUILD on a ") + kind_name(obj.kind));
    }

    // --- storages ---
    static bool tag(const PyObject* o, const char* t) {
        return (o->kind == Kind::kString || o->kind == Kind::kBytes) && o->text == t;
    }

    int add_storage(const std::string& key, at::ScalarType dtype, int64_t numel, int root,
                    int64_t view_offset) {
        auto it = ck_.storage_by_key.find(key);
        if (it != ck_.storage_by_key.end()) {
            const StorageRecord& s = ck_.storages[it->second];
            if (s.dtype != dtype || s.numel != numel || s.root != root || s.view_offset != view_offset)
                fail("storage " + shown(key) + " is declared twice, differently");
            return it->second;
        }
        StorageRecord s;
        s.key = key;
        s.dtype = dtype;
        s.numel = numel;
        s.root = root;
        s.view_offset = view_offset;
        ck_.storages.push_back(std::move(s));
        ck_.storage_by_key.emplace(key, int(ck_.storages.size()) - 1);
        return int(ck_.storages.size()) - 1;
    }

    PyObject* persistent(const PyObject& pid) {
        if (ids_ == PersistentIds::kNone) fail("unexpected persistent id");
        const auto& a = pid.items;
        if (pid.kind == Kind::kTuple && !a.empty() && tag(a[0], "module"))
            fail("the file holds a pickled nn.Module, not a state dict; re-save it with "
                 "torch.save(model.state_dict(), path)");
        const size_t n = ids_ == PersistentIds::kZip ? 5 : 6;
        if (pid.kind != Kind::kTuple || a.size() != n || !tag(a[0], "storage") ||
            a[1]->kind != Kind::kGlobal || !a[2]->is_string() ||
            (!a[3]->is_string() && a[3]->kind != Kind::kBytes) || a[4]->kind != Kind::kInt)
            fail("malformed storage reference");
        const StorageType* type = storage_type(a[1]->text);
        if (!type) fail(shown(a[1]->text) + " is not a storage type");
        const int64_t numel = a[4]->integer;
        if (numel < 0 || numel > (int64_t(1) << 50) / element_size(type->dtype))
            fail("storage " + shown(a[2]->text) + " declares " + std::to_string(numel) + " elements");
        if (a[2]->text.empty() || a[2]->text.size() > kMaxGlobalName) fail("bad storage key");
        int index = add_storage(a[2]->text, type->dtype, numel, -1, 0);
        if (n == 6 && a[5]->kind != Kind::kNone) {  // legacy view: (view key, offset, size)
            const PyObject& v = *a[5];
            if (v.kind != Kind::kTuple || v.items.size() != 3 || !v.items[0]->is_string() ||
                v.items[1]->kind != Kind::kInt || v.items[2]->kind != Kind::kInt)
                fail("malformed storage view");
            const int64_t offset = v.items[1]->integer, size = v.items[2]->integer;
            if (offset < 0 || size < 0 || offset > numel || size > numel - offset)
                fail("storage view outside its storage");
            if (v.items[0]->text == a[2]->text || v.items[0]->text.empty() ||
                v.items[0]->text.size() > kMaxGlobalName)
                fail("bad storage view key");
            index = add_storage(v.items[0]->text, type->dtype, size, index, offset);
        }
        PyObject* o = make(Kind::kStorage);
        o->index = index;
        return o;
    }

    Impl& ck_;
    std::string_view data_;
    std::string what_;
    PersistentIds ids_;
    size_t pos_ = 0, op_pos_ = 0;
    std::vector<PyObject*> stack_;
    std::vector<size_t> marks_;
    std::vector<PyObject*> memo_;
    uint64_t memo_count_ = 0;
};

std::string_view capped(std::string_view data, uint64_t max) {
    return data.size() > max ? data.substr(0, max) : data;
}

void parse_zip(Impl& ck) {
    ck.zip = std::make_unique<ZipArchive>(ck.bytes, ck.name);
    const auto& entries = ck.zip->entries();
    if (entries.empty()) ck.fail("empty ZIP archive, not a torch.save checkpoint");
    const std::string& first = entries.front().name;
    const size_t slash = first.find('/');
    if (slash == std::string::npos || slash == 0)
        ck.fail("ZIP archive without torch.save's top-level folder; not a PyTorch checkpoint");
    ck.prefix = first.substr(0, slash + 1);
    if (ck.zip->find(ck.prefix + "constants.pkl"))
        ck.fail("a TorchScript archive (torch.jit.save), not a torch.save checkpoint");
    const ZipEntry* pkl = ck.zip->find(ck.prefix + "data.pkl");
    if (!pkl) ck.fail("ZIP archive without " + ck.prefix + "data.pkl; not a torch.save checkpoint");
    for (const char* name : {"byteorder", ".data/byteorder"}) {
        if (const ZipEntry* e = ck.zip->find(ck.prefix + name)) {
            if (ck.zip->read(*e) != "little") ck.fail("big-endian checkpoint (byteorder is not 'little')");
        }
    }
    if (pkl->size > ck.limits.max_pickle_bytes)
        ck.fail("data.pkl has " + std::to_string(pkl->size) + " bytes, more than the limit of " +
                std::to_string(ck.limits.max_pickle_bytes));
    Unpickler u(ck, ck.zip->read(*pkl), "data.pkl", PersistentIds::kZip);
    ck.root = u.load();

    for (StorageRecord& s : ck.storages) {
        const std::string path = ck.prefix + "data/" + s.key;
        s.entry = ck.zip->find(path);
        if (!s.entry) ck.fail("storage " + shown(s.key) + " is missing from the archive");
        const uint64_t nbytes = uint64_t(s.numel) * uint64_t(element_size(s.dtype));
        if (s.entry->size != nbytes)
            ck.fail("storage " + shown(s.key) + " has " + std::to_string(s.entry->size) +
                    " bytes, but is declared as " + std::to_string(s.numel) + " x " +
                    c10::toString(s.dtype) + " (" + std::to_string(nbytes) + " bytes)");
        s.located = true;
    }
}

void parse_legacy(Impl& ck) {
    ck.legacy = true;
    size_t pos = 0;
    auto next = [&](const char* what, PersistentIds ids) {
        Unpickler u(ck, capped(ck.bytes.substr(pos), ck.limits.max_pickle_bytes), what, ids);
        PyObject* o = u.load();
        pos += u.position();
        return o;
    };
    const PyObject* magic = next("magic number", PersistentIds::kNone);
    if (magic->kind != Kind::kBigInt ||
        magic->text != std::string(reinterpret_cast<const char*>(kLegacyMagic), sizeof kLegacyMagic))
        ck.fail("not a PyTorch checkpoint (wrong magic number)");
    const PyObject* protocol = next("protocol version", PersistentIds::kNone);
    if (protocol->kind != Kind::kInt || protocol->integer != kLegacyProtocol)
        ck.fail("unsupported legacy checkpoint protocol");
    const PyObject* info = next("system info", PersistentIds::kNone);
    if (info->kind != Kind::kDict) ck.fail("malformed legacy system info");
    if (const PyObject* le = info->get("little_endian"); le && !(le->kind == Kind::kBool && le->boolean))
        ck.fail("big-endian checkpoint");
    ck.root = next("pickle", PersistentIds::kLegacy);
    const PyObject* keys = next("storage keys", PersistentIds::kNone);
    if (keys->kind != Kind::kList) ck.fail("malformed legacy storage key list");

    for (const PyObject* key : keys->items) {
        if (!key->is_string()) ck.fail("malformed legacy storage key");
        auto it = ck.storage_by_key.find(key->text);
        if (it == ck.storage_by_key.end()) ck.fail("data for an unknown storage " + shown(key->text));
        StorageRecord& s = ck.storages[it->second];
        if (s.root >= 0 || s.located) ck.fail("storage " + shown(key->text) + " is stored twice");
        if (ck.bytes.size() - pos < 8) ck.fail("truncated: storage " + shown(s.key) + " is missing");
        int64_t numel = 0;
        std::memcpy(&numel, ck.bytes.data() + pos, 8);
        pos += 8;
        const uint64_t itemsize = uint64_t(element_size(s.dtype));
        if (numel != s.numel)
            ck.fail("storage " + shown(s.key) + " holds " + std::to_string(numel) +
                    " elements, declared " + std::to_string(s.numel));
        if (uint64_t(numel) > (ck.bytes.size() - pos) / itemsize)
            ck.fail("truncated: storage " + shown(s.key) + " extends past the end of the file");
        s.file_offset = pos;
        s.located = true;
        pos += uint64_t(numel) * itemsize;
    }
    for (const StorageRecord& s : ck.storages)
        if (s.root < 0 && !s.located) ck.fail("no data for storage " + shown(s.key));
}

TorchCheckpoint parse(std::shared_ptr<const void> owner, std::string_view bytes,
                      const std::string& name, const PickleLimits& limits) {
    auto impl = std::make_unique<Impl>();
    impl->name = name;
    impl->limits = limits;
    impl->owner = std::move(owner);
    impl->bytes = bytes;
    if (looks_like_zip(bytes)) {
        parse_zip(*impl);
    } else if (bytes.size() > 262 && bytes.substr(257, 5) == "ustar") {
        impl->fail("a tar checkpoint from PyTorch before 0.4, which igan does not read; load and "
                   "re-save it with a current PyTorch");
    } else if (!bytes.empty() && static_cast<unsigned char>(bytes[0]) == 0x80) {
        parse_legacy(*impl);
    } else {
        impl->fail(bytes.empty() ? "empty file"
                                 : "not a PyTorch checkpoint (neither a torch.save ZIP archive "
                                   "nor the legacy format)");
    }
    return TorchCheckpoint(std::move(impl));
}

struct Mapping {
    void* addr = nullptr;
    size_t size = 0;
    ~Mapping() {
        if (addr) munmap(addr, size);
    }
};

}  // namespace

const char* kind_name(Kind kind) {
    switch (kind) {
        case Kind::kNone: return "None";
        case Kind::kBool: return "bool";
        case Kind::kInt: return "int";
        case Kind::kBigInt: return "int";
        case Kind::kFloat: return "float";
        case Kind::kString: return "str";
        case Kind::kBytes: return "bytes";
        case Kind::kTuple: return "tuple";
        case Kind::kList: return "list";
        case Kind::kDict: return "dict";
        case Kind::kTensor: return "tensor";
        case Kind::kStorage: return "storage";
        case Kind::kGlobal: return "class";
        case Kind::kNumpyDType: return "numpy dtype";
    }
    return "?";
}

const PyObject* PyObject::get(const std::string& key) const {
    if (kind != Kind::kDict) return nullptr;
    for (auto it = entries.rbegin(); it != entries.rend(); ++it)
        if (it->first->is_string() && it->first->text == key) return it->second;
    return nullptr;
}

TorchCheckpoint::TorchCheckpoint() = default;
TorchCheckpoint::TorchCheckpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TorchCheckpoint::~TorchCheckpoint() = default;
TorchCheckpoint::TorchCheckpoint(TorchCheckpoint&&) noexcept = default;
TorchCheckpoint& TorchCheckpoint::operator=(TorchCheckpoint&&) noexcept = default;

const PyObject& TorchCheckpoint::root() const { return *impl_->root; }
const std::string& TorchCheckpoint::name() const { return impl_->name; }
const PickleLimits& TorchCheckpoint::limits() const { return impl_->limits; }
bool TorchCheckpoint::legacy_format() const { return impl_->legacy; }

const TensorInfo& TorchCheckpoint::tensor_info(const PyObject& tensor) const {
    if (tensor.kind != Kind::kTensor || tensor.index < 0 || size_t(tensor.index) >= impl_->tensors.size())
        throw Error(impl_->name + ": internal error: not a tensor of this checkpoint");
    return impl_->tensors[tensor.index];
}

at::Tensor TorchCheckpoint::tensor(const PyObject& tensor) const {
    const TensorInfo& t = tensor_info(tensor);
    const StorageRecord* s = &impl_->storages[t.storage];
    int64_t offset = t.storage_offset;  // elements into the root storage
    if (s->root >= 0) {
        offset += s->view_offset;
        s = &impl_->storages[s->root];
    }
    const int64_t itemsize = element_size(s->dtype);
    std::string_view data = impl_->zip ? impl_->zip->read(*s->entry)
                                       : impl_->bytes.substr(s->file_offset, uint64_t(s->numel * itemsize));
    int64_t numel = 1, extent = 1;  // extent: elements from the offset to the last one touched
    for (size_t i = 0; i < t.sizes.size(); ++i) {
        numel *= t.sizes[i];
        if (t.sizes[i] > 0) extent += (t.sizes[i] - 1) * t.strides[i];
    }
    if (numel == 0) return at::empty(t.sizes, at::TensorOptions().dtype(t.dtype));
    at::Tensor buffer = at::empty({extent}, at::TensorOptions().dtype(t.dtype));
    std::memcpy(buffer.data_ptr(), data.data() + offset * itemsize, size_t(extent * itemsize));
    if (t.dtype == at::kBool) {
        const auto* b = static_cast<const unsigned char*>(buffer.data_ptr());
        for (int64_t i = 0; i < extent; ++i)
            if (b[i] > 1) throw Error(impl_->name + ": bool tensor holds a value other than 0 and 1");
    }
    return buffer.as_strided(t.sizes, t.strides).contiguous();
}

TorchCheckpoint read_torch_checkpoint(const std::string& path, const PickleLimits& limits) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const int err = errno;
        ::close(fd);
        throw Error("cannot read " + path + ": " + (S_ISDIR(st.st_mode) ? "is a directory" : std::strerror(err)));
    }
    auto mapping = std::make_shared<Mapping>();
    if (st.st_size > 0) {
        mapping->size = size_t(st.st_size);
        void* addr = ::mmap(nullptr, mapping->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (addr == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            throw Error("cannot map " + path + ": " + std::strerror(err));
        }
        mapping->addr = addr;
    }
    ::close(fd);
    const std::string_view bytes(static_cast<const char*>(mapping->addr), mapping->size);
    return parse(mapping, bytes, path, limits);
}

TorchCheckpoint parse_torch_checkpoint(std::string bytes, const std::string& name_for_errors,
                                       const PickleLimits& limits) {
    auto owner = std::make_shared<std::string>(std::move(bytes));
    const std::string_view view(*owner);
    return parse(owner, view, name_for_errors, limits);
}

namespace {

void describe(const TorchCheckpoint& ck, const PyObject& v, const std::string& label, int depth,
              int max_depth, int& lines, int max_lines, std::string& out) {
    if (lines >= max_lines) return;
    if (++lines == max_lines) {
        out += std::string(2 * depth, ' ') + "...\n";
        return;
    }
    std::string line = std::string(2 * depth, ' ') + label;
    switch (v.kind) {
        case Kind::kInt: line += std::to_string(v.integer); break;
        case Kind::kFloat: line += std::to_string(v.real); break;
        case Kind::kBool: line += v.boolean ? "True" : "False"; break;
        case Kind::kString: line += shown(v.text); break;
        case Kind::kTensor: {
            const TensorInfo& t = ck.tensor_info(v);
            std::ostringstream s;
            s << "tensor " << c10::toString(t.dtype) << " " << c10::IntArrayRef(t.sizes);
            line += s.str();
            break;
        }
        case Kind::kDict: line += "dict (" + std::to_string(v.entries.size()) + " items)"; break;
        case Kind::kList: case Kind::kTuple:
            line += std::string(kind_name(v.kind)) + " (" + std::to_string(v.items.size()) + " items)";
            break;
        default: line += kind_name(v.kind);
    }
    out += line + "\n";
    if (depth >= max_depth) return;
    if (v.kind == Kind::kDict) {
        for (const auto& [k, val] : v.entries) {
            const std::string key = k->is_string() ? k->text
                                    : k->kind == Kind::kInt ? std::to_string(k->integer)
                                                            : std::string(kind_name(k->kind));
            describe(ck, *val, printable(key) + ": ", depth + 1, max_depth,
                     lines, max_lines, out);
        }
    } else if (v.kind == Kind::kList || v.kind == Kind::kTuple) {
        for (const PyObject* item : v.items)
            describe(ck, *item, "- ", depth + 1, max_depth, lines, max_lines, out);
    }
}

}  // namespace

std::string describe_pickle(const TorchCheckpoint& checkpoint, const PyObject& value, int max_depth,
                            int max_lines) {
    std::string out;
    int lines = 0;
    describe(checkpoint, value, "", 0, std::min(max_depth, checkpoint.limits().max_depth), lines,
             max_lines, out);
    return out;
}

}  // namespace igan
