#pragma once
// The tile server's connection handling over cpp-httplib: httplib parses requests and routes
// them, but each connection is driven here, because httplib's own loop (0.11) reads with a
// per-read timeout only (a client dripping one byte at a time holds a thread forever), creates
// a new stream per request (pipelined requests are dropped), reports a half-closed client as
// dead before answering it, and blocks shutdown on slow clients. Here:
// - a request's head (request line and headers) must arrive within `request_timeout` of its first
//   byte and fit the size limits (408, 414, 431 otherwise);
// - methods other than GET and HEAD get 405 with Allow; a bad or oversized Content-Length 400/413;
// - one buffered stream per connection answers pipelined requests in order;
// - at most `max_per_client` connections per client address are served at once (503 beyond);
// - after begin_shutdown(), idle connections close at once and writes give up after
//   `request_timeout`, so shutdown takes about that long whatever clients do.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace igan {

struct ConnectionLimits {
    std::chrono::milliseconds request_timeout{5000};  // a request's head and body
    std::chrono::milliseconds idle_timeout{2000};     // keep-alive wait for the next request
    std::chrono::milliseconds write_timeout{5000};    // a response write without progress
    size_t max_request_line = 8192;
    size_t max_header_bytes = 8192;
    size_t max_body_bytes = 64 * 1024;
    size_t max_requests = 1000;  // per connection
    int max_per_client = 32;
};

class HttpServer : public httplib::Server {
public:
    explicit HttpServer(ConnectionLimits limits);
    ~HttpServer() override;

    // Stops reading new requests; call stop() after it.
    void begin_shutdown();
    // Answers given here, before routing (the logger sees only routed ones): status, seconds.
    std::function<void(int, double)> on_early_answer;

    int connections() const { return connections_.load(); }

private:
    class Connection;
    friend class Connection;

    bool process_and_close_socket(socket_t sock) override;
    void serve(Connection& conn);
    // Answers without httplib (which never saw the request) and reports it to on_early_answer.
    void refuse(Connection& conn, int status, const std::string& why,
                const std::vector<std::pair<std::string, std::string>>& extra = {});
    bool admit(const std::string& client);
    void release(const std::string& client);
    // The limit on a write that sees no progress: write_timeout, or less once shutting down.
    std::chrono::steady_clock::time_point write_deadline() const;

    const ConnectionLimits limits_;
    const int stop_fd_;  // eventfd, readable once shutting down: wakes every waiting connection
    std::atomic<bool> stopping_{false};
    std::atomic<int64_t> shutdown_deadline_ns_{0};
    std::atomic<int> connections_{0};
    std::mutex clients_mutex_;
    std::map<std::string, int> clients_;
};

}  // namespace igan
