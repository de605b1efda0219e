// `igan init`, `igan inspect`, `igan forward`: model files and the parity tool.
#include <cstdio>
#include <iostream>

#include "commands.h"

namespace igan::cli {
namespace {

int run_inspect(const std::string& model, const std::string& config, bool json) {
    const igan::Engine engine(model, "cpu", config);
    const auto& s = engine.summary();
    if (json) {
        std::printf(
            "{\"path\":\"%s\",\"sha256\":\"%s\",\"config_name\":\"%s\",\"parameters\":%lld,"
            "\"patch_size\":%lld,\"gflop_per_patch\":%.3f,\"default_tile\":%lld,"
            "\"gflop_per_tile\":%.3f,\"step\":%lld,\"config\":%s}\n",
            s.path.c_str(), s.sha256.c_str(), s.config_name.c_str(), (long long)s.parameters,
            (long long)s.patch_size, s.gflop_per_patch, (long long)s.default_tile,
            s.gflop_per_tile, (long long)s.step, s.config_json.c_str());
        return 0;
    }
    std::printf("model:        %s\nsha256:       %s\nconfig:       %s\nparameters:   %lld\n"
                "patch:        %lld px (%.2f GFLOP)\ntile:         %lld px default "
                "(%.2f GFLOP per tile)\nlatent cell:  %lld px\ntrained:      %lld steps\n"
                "config json:  %s\n",
                s.path.c_str(), s.sha256.c_str(), s.config_name.c_str(), (long long)s.parameters,
                (long long)s.patch_size, s.gflop_per_patch, (long long)s.default_tile,
                s.gflop_per_tile, (long long)s.upscale, (long long)s.step, s.config_json.c_str());
    return 0;
}

RegisterCommand init_reg(10, [](CLI::App& app, Globals&) {
    auto req = std::make_shared<InitRequest>();
    auto* cmd = app.add_subcommand("init", "write a randomly initialised model");
    cmd->add_option("--config", req->config, "paper, tiny, golden or a JSON file")
        ->capture_default_str();
    cmd->add_option("-s,--seed", req->seed, "initialisation seed")->capture_default_str();
    cmd->add_option("-o,--out", req->out, "output .safetensors")->required();
    return std::make_pair(cmd, Runner([req] {
        check_output_path(req->out);
        init_model(*req);
        std::cout << req->out << "\n";
        return 0;
    }));
});

RegisterCommand inspect_reg(30, [](CLI::App& app, Globals&) {
    struct Args {
        std::string model, config;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand("inspect", "print a model's config, size and cost");
    cmd->add_option("model", a->model, "model weights")->required();
    cmd->add_option("--config", a->config, "config for files without igan metadata");
    cmd->add_flag("--json", a->json, "JSON output");
    return std::make_pair(cmd, Runner([a] { return run_inspect(a->model, a->config, a->json); }));
});

RegisterCommand forward_reg(40, [](CLI::App& app, Globals&) {
    auto r = std::make_shared<ForwardRequest>();
    auto* cmd = app.add_subcommand(
        "forward", "run the networks on explicit inputs (golden-reference naming)");
    cmd->add_option("-m,--model", r->model, "generator weights")->required();
    cmd->add_option("--inputs", r->inputs, "inputs .safetensors")->required();
    cmd->add_option("-o,--out", r->out, "outputs .safetensors")->required();
    cmd->add_option("--discriminator", r->discriminator, "discriminator weights (optional)");
    cmd->add_option("--config", r->config_override, "config for files without igan metadata");
    cmd->add_option("--device", r->device, "cpu or cuda")->capture_default_str();
    return std::make_pair(cmd, Runner([r] {
        check_output_path(r->out);
        const auto names = run_forward(*r);
        std::fprintf(stderr, "wrote %zu tensors to %s\n", names.size(), r->out.c_str());
        return 0;
    }));
});

}  // namespace
}  // namespace igan::cli
