// `igan convert IN.pth OUT.safetensors`: checkpoints of the original implementation to igan;
// `igan convert --from tfjs DIR OUT.safetensors`: the feature network (docs/features.md).
#include <cstdio>
#include <iostream>

#include "commands.h"

namespace igan::cli {
namespace {

RegisterCommand convert_reg(50, [](CLI::App& app, Globals&) {
    auto r = std::make_shared<ConvertRequest>();
    auto* cmd = app.add_subcommand(
        "convert", "convert a checkpoint of the original implementation (torch.save) to safetensors");
    cmd->add_option("in", r->in, "checkpoint written by the original train.py (.pth/.pth.tar), or the TF.js model")
        ->required();
    cmd->add_option("out", r->out, "output .safetensors (for generate, forward, inspect)")->required();
    cmd->add_option("--from", r->from,
                    "pth: an original checkpoint; tfjs: a TF.js Keras MobileNetV2 or InceptionV3 "
                    "(model.json or nsfwjs's model.min.js, or its folder) to feature weights for "
                    "eval/inversion")
        ->check(CLI::IsMember({"pth", "tfjs"}))
        ->capture_default_str();
    cmd->add_option("--part", r->part, "which network: g_ema, g or d")->capture_default_str();
    cmd->add_option("--config", r->config,
                    "paper, tiny, golden, an original configs/model/*.yaml or a JSON config; "
                    "widths always come from the weights")
        ->capture_default_str();
    return std::make_pair(cmd, Runner([r] {
        check_output_path(r->out);
        const ConvertResult result = convert_checkpoint(*r);
        for (const auto& note : result.notes) std::fprintf(stderr, "note: %s\n", note.c_str());
        std::fprintf(stderr, "wrote %s: %s, %lld tensors, %lld values, step %lld\n", r->out.c_str(),
                     result.arch.c_str(), (long long)result.tensors, (long long)result.values,
                     (long long)result.step);
        std::cout << r->out << "\n";
        return 0;
    }));
});

}  // namespace
}  // namespace igan::cli
