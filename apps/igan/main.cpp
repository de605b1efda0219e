// igan: command-line front end. Exit codes: 0 success, 1 failure, 2 bad usage.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "commands.h"

namespace igan::cli {

std::vector<std::pair<int, Registration>>& CommandRegistry::all() {
    static std::vector<std::pair<int, Registration>> registry;
    return registry;
}

}  // namespace igan::cli

namespace {

std::string self_exe(const char* argv0) {
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, size_t(n)) : std::string(argv0);
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
    app.add_option("--threads", globals.threads, "CPU threads (0 = all cores)")
        ->capture_default_str();

    auto registry = CommandRegistry::all();
    std::stable_sort(registry.begin(), registry.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::pair<CLI::App*, Runner>> commands;
    for (auto& [order, reg] : registry) commands.push_back(reg(app, globals));

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
        std::fprintf(stderr, "igan: error: %s\nRun with --help for more information.\n", e.what());
        return 2;
    }

    try {
        if (globals.threads < 0) throw igan::UsageError("--threads must be >= 0");
        igan::set_threads(globals.threads);
        for (auto& [cmd, run] : commands)
            if (cmd->parsed()) return run();
        return 2;
    } catch (const igan::UsageError& e) {
        std::fprintf(stderr, "igan: error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "igan: error: %s\n", e.what());
        return 1;
    }
}
