// igan: command-line front end. Exit codes: 0 success, 1 failure, 2 bad usage; killed by
// SIGINT/SIGTERM/SIGHUP: 128 + the signal, with no temporary output left behind.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>

#include <igan/image.h>
#include <igan/text.h>

#include "commands.h"

namespace igan::cli {

std::vector<std::pair<int, Registration>>& CommandRegistry::all() {
    static std::vector<std::pair<int, Registration>> registry;
    return registry;
}

CLI::Option* add_webp_quality_option(CLI::App* cmd, int* quality, const std::string& help) {
    return cmd
        ->add_option_function<std::string>(
            "--webp-quality",
            [quality](const std::string& v) {
                if (v == "lossless") {
                    *quality = igan::kWebpLossless;
                    return;
                }
                int64_t q = 0;
                if (!igan::parse_int64(v, &q) || q < 1 || q > 100)
                    throw CLI::ValidationError("--webp-quality", "lossless or 1..100, got " + v);
                *quality = int(q);
            },
            help)
        ->default_str(std::to_string(*quality));
}

CLI::Option* add_precision_option(CLI::App* cmd, std::string* precision) {
    return cmd
        ->add_option("--precision", *precision,
                     "convolutions in fp32, tf32 (cuda), bf16 or fp16 (cuda); the rest stays "
                     "fp32 (docs/gpu.md)")
        ->check(CLI::IsMember({"fp32", "tf32", "bf16", "fp16"}))
        ->capture_default_str();
}

}  // namespace igan::cli

namespace {

std::string self_exe(const char* argv0) {
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, size_t(n)) : std::string(argv0);
}

// Removes the temporary files of outputs being written, then dies of the same signal (exit
// status 128 + n), as if unhandled. Commands with their own handlers (train, serve) replace it.
extern "C" void on_fatal_signal(int sig) {
    igan::remove_temporary_outputs();
    signal(sig, SIG_DFL);
    raise(sig);  // blocked inside the handler; delivered, and fatal, as it returns
}

void remove_outputs_on_signals() {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        struct sigaction old = {};
        sigaction(sig, nullptr, &old);
        if (old.sa_handler == SIG_IGN) continue;  // nohup and background jobs keep ignoring it
        struct sigaction sa = {};
        sa.sa_handler = on_fatal_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sig, &sa, nullptr);
    }
}

// CLI11 reads integers with strtoll(..., 0): out-of-range values saturate silently (a seed of
// 10^23 became 2^63-1), "010" is octal and "0x10" hex. Every integer option therefore accepts
// plain decimal within its type's range only, and an error names the range.
CLI::Validator decimal_integer(bool is_unsigned, const std::string& range) {
    return CLI::Validator(
        [is_unsigned, range](std::string& text) -> std::string {
            size_t begin = (!is_unsigned && !text.empty() && text[0] == '-') ? 1 : 0;
            if (begin == text.size() ||
                text.find_first_not_of("0123456789", begin) != std::string::npos)
                return "'" + text + "' is not a decimal integer; valid: " + range;
            const char* first = text.data();
            const char* last = first + text.size();
            std::from_chars_result r;
            std::string canonical;
            if (is_unsigned) {
                uint64_t v = 0;
                r = std::from_chars(first, last, v);
                canonical = std::to_string(v);
            } else {
                int64_t v = 0;
                r = std::from_chars(first, last, v);
                canonical = std::to_string(v);
            }
            if (r.ec != std::errc() || r.ptr != last)
                return "'" + text + "' is out of range; valid: " + range;
            text = canonical;  // no leading zeros, which CLI11 would read as octal
            return "";
        },
        "", "");
}

void strict_integer_options(CLI::App* app) {
    for (CLI::Option* opt : app->get_options()) {
        const std::string full = opt->get_type_name();  // e.g. "INT", "INT:INT in [1 - 9]"
        const std::string type = full.substr(0, full.find(':'));
        if (opt->get_type_size_max() <= 0 || (type != "INT" && type != "UINT")) continue;
        const bool is_unsigned = type == "UINT";
        std::string range =
            is_unsigned ? "integers from 0 to " +
                              std::to_string(std::numeric_limits<uint64_t>::max())
                        : "integers from " + std::to_string(std::numeric_limits<int64_t>::min()) +
                              " to " + std::to_string(std::numeric_limits<int64_t>::max());
        if (opt->check_lname("seed"))
            range = "seeds are integers from 0 to " +
                    (is_unsigned ? std::to_string(std::numeric_limits<uint64_t>::max())
                                 : std::to_string(std::numeric_limits<int64_t>::max()));
        opt->transform(decimal_integer(is_unsigned, range));
    }
    for (CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; }))
        strict_integer_options(sub);
}

}  // namespace

int main(int argc, char** argv) {
    using namespace igan::cli;
    // Activations are tens to hundreds of MB and are freed and reallocated at every layer. Above
    // glibc's mmap threshold each would be a fresh mapping whose pages fault in (zeroed) again;
    // kept in the heap they are reused, which makes the generator's elementwise passes several
    // times faster, for some fragmentation (peak RSS +20% in a micro-benchmark, bench/README.md).
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    CLI::App app{"igan: infinite-pixel image synthesis (InfinityGAN in C++)"};
    app.require_subcommand(1);
    app.fallthrough();  // global options such as --threads may follow the subcommand
    app.set_version_flag("--version", [] { return igan::version_report(); });
    Globals globals;
    globals.self_exe = self_exe(argv[0]);
    app.add_option("--threads", globals.threads,
                   "CPU threads for the network and for PNG compression (0 = all cores)")
        ->capture_default_str();

    auto registry = CommandRegistry::all();
    std::stable_sort(registry.begin(), registry.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::pair<CLI::App*, Runner>> commands;
    for (auto& [order, reg] : registry) commands.push_back(reg(app, globals));
    strict_integer_options(&app);
    remove_outputs_on_signals();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
        std::fprintf(stderr, "igan: error: %s\nRun with --help for more information.\n", e.what());
        return 2;
    }

    try {
        if (globals.threads < 0 || globals.threads > igan::kMaxThreads)
            throw igan::UsageError("--threads must be in [0, " +
                                   std::to_string(igan::kMaxThreads) + "] (0 = all cores)");
        igan::set_threads(globals.threads);
        for (auto& [cmd, run] : commands)
            if (cmd->parsed()) return run();
        return 2;
    } catch (const igan::UsageError& e) {
        std::fprintf(stderr, "igan: error: %s\n", e.what());
        return 2;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "igan: error: out of memory: the request needs more memory than is "
                             "available (reduce the size, --batch or --workers)\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "igan: error: %s\n", e.what());
        return 1;
    }
}
