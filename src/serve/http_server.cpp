#include "serve/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

namespace igan {

namespace {

using Clock = std::chrono::steady_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;

// poll() timeout for the time left until `deadline`, rounded up to whole milliseconds.
int millis_until(Clock::time_point deadline) {
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) return 0;
    return int(std::min<int64_t>(
        std::chrono::ceil<std::chrono::milliseconds>(left).count(), 1 << 30));
}

std::string address_of(const sockaddr_storage& a, int* port) {
    char text[INET6_ADDRSTRLEN] = "";
    if (a.ss_family == AF_INET) {
        const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
        inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
        *port = ntohs(v4.sin_port);
    } else if (a.ss_family == AF_INET6) {
        const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
        inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
        *port = ntohs(v6.sin6_port);
    }
    return text;
}

bool iequals(const std::string& a, const char* b) {
    const size_t n = std::strlen(b);
    if (a.size() != n) return false;
    for (size_t i = 0; i < n; ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
    return true;
}

std::string trim(const std::string& s) {
    const size_t b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

const char* reason_phrase(int status) {
    switch (status) {
        case 400:
            return "Bad Request";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 413:
            return "Payload Too Large";
        case 414:
            return "URI Too Long";
        case 431:
            return "Request Header Fields Too Large";
        case 503:
            return "Service Unavailable";
        default:
            return "Error";
    }
}

// What the connection loop needs from a request head before httplib parses it.
struct Head {
    bool http10 = false;
    bool has_body = false;
    int status = 0;  // non-zero: answer this and close
    std::string error;
    Headers extra;   // headers of that answer
};

Head check_head(const std::string& head, const ConnectionLimits& limits) {
    Head h;
    auto refuse = [&h](int status, std::string why) {
        h.status = status;
        h.error = std::move(why);
        return h;
    };
    const size_t line_end = head.find("\r\n");
    const std::string line = head.substr(0, line_end);
    const size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
    if (sp1 == std::string::npos || sp2 == sp1 || line.find(' ', sp1 + 1) != sp2)
        return refuse(400, "malformed request line");
    const std::string method = line.substr(0, sp1), version = line.substr(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0")
        return refuse(400, "unsupported protocol '" + version.substr(0, 16) + "': use HTTP/1.1");
    h.http10 = version == "HTTP/1.0";

    std::string length;
    bool chunked = false;
    for (size_t at = line_end + 2; at < head.size();) {
        const size_t end = head.find("\r\n", at);
        if (end == std::string::npos) break;
        const std::string field = head.substr(at, end - at);
        at = end + 2;
        const size_t colon = field.find(':');
        if (field.empty() || colon == std::string::npos) continue;
        const std::string name = field.substr(0, colon), value = trim(field.substr(colon + 1));
        if (iequals(name, "content-length")) {
            if (value.empty() || value.size() > 18 ||
                value.find_first_not_of("0123456789") != std::string::npos ||
                (!length.empty() && length != value))
                return refuse(400, "Content-Length must be one non-negative decimal integer");
            length = value;
        } else if (iequals(name, "transfer-encoding")) {
            chunked = true;
        }
    }
    if (chunked && !length.empty())
        return refuse(400, "Content-Length and Transfer-Encoding together are ambiguous");
    if (!length.empty() && std::stoull(length) > limits.max_body_bytes)
        return refuse(413, "request body over " + std::to_string(limits.max_body_bytes) +
                               " bytes");
    h.has_body = chunked || (!length.empty() && std::stoull(length) > 0);
    if (method != "GET" && method != "HEAD") {
        refuse(405, "method " + method.substr(0, 16) + " not allowed: this server answers GET "
                                                       "and HEAD");
        h.extra = {{"Allow", "GET, HEAD"}};
    }
    return h;
}

}  // namespace

// One client connection: a buffered stream that outlives requests (so bytes of the next,
// pipelined request are kept), with absolute deadlines instead of per-read timeouts.
class HttpServer::Connection final : public httplib::Stream {
public:
    enum class HeadStatus { kReady, kClosed, kTimedOut, kLineTooLong, kHeadersTooLarge };

    Connection(int fd, HttpServer& server) : fd_(fd), server_(server) {
        sockaddr_storage a{};
        socklen_t n = sizeof a;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &n) == 0)
            remote_ = address_of(a, &remote_port_);
        n = sizeof a;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) == 0)
            local_ = address_of(a, &local_port_);
    }

    const std::string& remote() const { return remote_; }
    bool failed() const { return failed_; }
    Clock::time_point started() const { return started_; }

    // Waits until `idle_until` for a request to begin, then until request_timeout after its
    // first byte for the whole head; on kReady, head() is the request line and headers.
    HeadStatus read_head(Clock::time_point idle_until) {
        const auto& limits = server_.limits_;
        buf_.erase(0, pos_);  // what earlier requests consumed (pipelining keeps the rest)
        pos_ = 0;
        // Blank lines before a request line are allowed (RFC 9112, 2.2).
        auto skip_blank = [&] {
            while (pos_ < buf_.size() && (buf_[pos_] == '\r' || buf_[pos_] == '\n')) ++pos_;
        };
        skip_blank();
        while (pos_ == buf_.size()) {
            if (fill(idle_until) <= 0) return HeadStatus::kClosed;
            skip_blank();
        }
        started_ = Clock::now();
        deadline_ = started_ + limits.request_timeout;
        for (size_t searched = pos_;;) {
            const size_t line_end = buf_.find("\r\n", pos_);
            const size_t line = (line_end == std::string::npos ? buf_.size() : line_end) - pos_;
            if (line > limits.max_request_line) return HeadStatus::kLineTooLong;
            const size_t end = buf_.find("\r\n\r\n", searched > pos_ + 3 ? searched - 3 : pos_);
            if (end != std::string::npos) {
                head_ = buf_.substr(pos_, end + 4 - pos_);
                if (line_end != end && end - line_end > limits.max_header_bytes)
                    return HeadStatus::kHeadersTooLarge;
                return HeadStatus::kReady;
            }
            if (line_end != std::string::npos && buf_.size() - line_end > limits.max_header_bytes)
                return HeadStatus::kHeadersTooLarge;
            searched = buf_.size();
            const int got = fill(deadline_);
            if (got == 0) return HeadStatus::kClosed;
            if (got < 0) return HeadStatus::kTimedOut;
        }
    }
    const std::string& head() const { return head_; }

    // An answer given without httplib (it never saw the request); the connection then closes.
    void answer(int status, const std::string& message, const Headers& extra = {}) {
        const std::string body =
            nlohmann::json{{"error", message}, {"status", status}}.dump(
                -1, ' ', false, nlohmann::json::error_handler_t::replace) +
            "\n";
        std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
                          "\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) +
                          "\r\nCache-Control: no-store\r\nAccess-Control-Allow-Origin: *\r\n"
                          "Connection: close\r\n";
        for (const auto& [name, value] : extra) out += name + ": " + value + "\r\n";
        out += "\r\n" + body;
        write(out.data(), out.size());
    }

    bool is_readable() const override {
        if (pos_ < buf_.size()) return true;
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, 0) > 0;
    }
    bool is_writable() const override { return !failed_; }

    ssize_t read(char* ptr, size_t size) override {
        if (pos_ == buf_.size() && fill(deadline_) <= 0) return -1;
        const size_t n = std::min(size, buf_.size() - pos_);
        std::memcpy(ptr, buf_.data() + pos_, n);
        pos_ += n;
        return ssize_t(n);
    }

    // All of it, or -1: a write may wait write_timeout for progress (less once shutting down).
    ssize_t write(const char* ptr, size_t size) override {
        if (failed_) return -1;
        size_t done = 0;
        auto deadline = server_.write_deadline();
        while (done < size) {
            const ssize_t n = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                done += size_t(n);
                deadline = server_.write_deadline();
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) break;
            deadline = std::min(deadline, server_.write_deadline());
            if (Clock::now() >= deadline) break;
            pollfd p[2] = {{fd_, POLLOUT, 0}, {server_.stop_fd_, POLLIN, 0}};
            // Once stopping, the stop event stays readable: wait on the socket alone.
            ::poll(p, server_.stopping_ ? 1 : 2, millis_until(deadline));
        }
        if (done < size) {
            failed_ = true;
            return -1;
        }
        return ssize_t(size);
    }

    void get_remote_ip_and_port(std::string& ip, int& port) const override {
        ip = remote_;
        port = remote_port_;
    }
    void get_local_ip_and_port(std::string& ip, int& port) const override {
        ip = local_;
        port = local_port_;
    }
    socket_t socket() const override { return fd_; }

private:
    // Appends what the socket has: 1 when bytes came, 0 at end of stream, on errors or when the
    // server stops, -1 at the deadline.
    int fill(Clock::time_point deadline) {
        if (pos_ == buf_.size()) {
            buf_.clear();
            pos_ = 0;
        }
        for (;;) {
            if (server_.stopping_) return 0;
            if (Clock::now() >= deadline) return -1;
            pollfd p[2] = {{fd_, POLLIN, 0}, {server_.stop_fd_, POLLIN, 0}};
            const int r = ::poll(p, 2, millis_until(deadline));
            if (r < 0 && errno != EINTR) return 0;
            if (r <= 0 || !(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char chunk[16384];
            const ssize_t n = ::recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT);
            if (n > 0) {
                buf_.append(chunk, size_t(n));
                return 1;
            }
            if (n == 0) return 0;
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return 0;
        }
    }

    const int fd_;
    HttpServer& server_;
    std::string remote_, local_;
    int remote_port_ = 0, local_port_ = 0;
    std::string buf_;  // received, not yet consumed from pos_
    size_t pos_ = 0;
    std::string head_;
    Clock::time_point started_ = Clock::now(), deadline_ = Clock::now();
    bool failed_ = false;
};

HttpServer::HttpServer(ConnectionLimits limits)
    : limits_(limits), stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

HttpServer::~HttpServer() {
    if (stop_fd_ >= 0) ::close(stop_fd_);
}

void HttpServer::begin_shutdown() {
    const auto deadline = Clock::now() + limits_.request_timeout;
    shutdown_deadline_ns_ = deadline.time_since_epoch().count();
    stopping_ = true;
    const uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);  // wakes every connection waiting to read
}

Clock::time_point HttpServer::write_deadline() const {
    const auto deadline = Clock::now() + limits_.write_timeout;
    if (!stopping_) return deadline;
    return std::min(deadline, Clock::time_point(Clock::duration(shutdown_deadline_ns_.load())));
}

bool HttpServer::admit(const std::string& client) {
    std::lock_guard<std::mutex> lock(clients_mutex_);
    int& n = clients_[client];
    if (n >= limits_.max_per_client) {
        if (n == 0) clients_.erase(client);
        return false;
    }
    ++n;
    return true;
}

void HttpServer::release(const std::string& client) {
    std::lock_guard<std::mutex> lock(clients_mutex_);
    const auto it = clients_.find(client);
    if (it != clients_.end() && --it->second <= 0) clients_.erase(it);
}

bool HttpServer::process_and_close_socket(socket_t sock) {
    ++connections_;
    {
        Connection conn(sock, *this);
        if (stopping_) {
            // Accepted just before shutdown: close without reading.
        } else if (!admit(conn.remote())) {
            refuse(conn, 503,
                   "too many connections from " + conn.remote() + " (at most " +
                       std::to_string(limits_.max_per_client) +
                       " at once): reuse keep-alive connections",
                   {{"Retry-After", "1"}});
        } else {
            serve(conn);
            release(conn.remote());
        }
    }
    // Half-close and drain briefly, so the client reads our last answer instead of a reset
    // caused by request bytes we did not read.
    ::shutdown(sock, SHUT_WR);
    const auto drain_until = Clock::now() + std::chrono::milliseconds(100);
    char sink[4096];
    for (size_t drained = 0; drained < (64u << 10);) {
        pollfd p{sock, POLLIN, 0};
        if (::poll(&p, 1, millis_until(drain_until)) <= 0) break;
        const ssize_t n = ::recv(sock, sink, sizeof sink, MSG_DONTWAIT);
        if (n <= 0) break;
        drained += size_t(n);
    }
    ::close(sock);
    --connections_;
    return true;
}

void HttpServer::refuse(Connection& conn, int status, const std::string& why,
                        const Headers& extra) {
    conn.answer(status, why, extra);
    if (on_early_answer)
        on_early_answer(status,
                        std::chrono::duration<double>(Clock::now() - conn.started()).count());
}

void HttpServer::serve(Connection& conn) {
    const std::string timeout_ms = std::to_string(limits_.request_timeout.count());
    for (size_t count = 1;; ++count) {
        const auto wait = count == 1 ? limits_.request_timeout : limits_.idle_timeout;
        switch (conn.read_head(Clock::now() + wait)) {
            case Connection::HeadStatus::kReady:
                break;
            case Connection::HeadStatus::kClosed:
                return;
            case Connection::HeadStatus::kTimedOut:
                return refuse(conn, 408, "the request head must arrive within " + timeout_ms + " ms");
            case Connection::HeadStatus::kLineTooLong:
                return refuse(conn, 414, "request line over " +
                                       std::to_string(limits_.max_request_line) + " bytes");
            case Connection::HeadStatus::kHeadersTooLarge:
                return refuse(conn, 431, "request headers over " +
                                       std::to_string(limits_.max_header_bytes) + " bytes");
        }
        const Head head = check_head(conn.head(), limits_);
        if (head.status != 0) return refuse(conn, head.status, head.error, head.extra);
        // This server takes no bodies: after one, close rather than trust where the next
        // request starts. HTTP/1.0 clients get Connection: close, not a Keep-Alive header.
        const bool close =
            head.http10 || head.has_body || count >= limits_.max_requests || stopping_;
        bool closed = false;
        if (!process_request(conn, close, closed, nullptr) || closed || close || conn.failed())
            return;
    }
}

}  // namespace igan
