// `igan merge`: the parts of a sharded render (igan generate --shard i/n) into one PNG.
#include <cstdio>
#include <iostream>

#include "commands.h"

namespace igan::cli {
namespace {

RegisterCommand reg(21, [](CLI::App& app, Globals&) {
    struct Args {
        std::vector<std::string> parts;
        std::string out;
        bool quiet = false;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand(
        "merge", "assemble the part files of igan generate --shard into one PNG (constant memory)");
    cmd->add_option("parts", a->parts, "part files, any order")->required();
    cmd->add_option("-o,--out", a->out, "output PNG")->required();
    cmd->add_flag("-q,--quiet", a->quiet, "no summary on stderr");
    return std::make_pair(cmd, Runner([a] {
        const auto r = igan::merge_parts(a->parts, a->out);
        std::cout << r.path << "\n";
        if (!a->quiet)
            std::fprintf(stderr, "wrote %s (%lldx%lld from %lld parts, %.2fs)\n", r.path.c_str(),
                         (long long)r.width, (long long)r.height, (long long)r.parts, r.seconds);
        return 0;
    }));
});

}  // namespace
}  // namespace igan::cli
