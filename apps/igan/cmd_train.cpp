// `igan train`: resumable, data-parallel training. SIGINT/SIGTERM end with a checkpoint, exit 0.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "commands.h"
#include "progress.h"

namespace igan::cli {
namespace {

volatile bool g_stop = false;
extern "C" void on_signal(int) { g_stop = true; }

// torchrun-style environment, overridden by explicit flags.
void read_distributed_env(TrainRequest& r) {
    auto get = [](const char* name) -> const char* { return std::getenv(name); };
    if (const char* v = get("RANK")) r.rank = std::atoi(v);
    if (const char* v = get("WORLD_SIZE")) r.world_size = std::atoi(v);
    if (const char* v = get("MASTER_ADDR")) r.master_addr = v;
    if (const char* v = get("MASTER_PORT")) r.master_port = std::atoi(v);
}

RegisterCommand reg(70, [](CLI::App& app, Globals&) {
    auto r = std::make_shared<TrainRequest>();
    read_distributed_env(*r);
    auto quiet = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("train", "train a model on a folder of photos (resumable)");
    cmd->add_option("--data", r->data, "folder of .png/.jpg images")->required();
    cmd->add_option("--config", r->config, "paper, tiny or a JSON file")->capture_default_str();
    cmd->add_option("-o,--out", r->out, "run folder")->required();
    cmd->add_option("--batch", r->batch, "batch per process")->capture_default_str();
    cmd->add_option("--iters", r->iters, "total iterations to reach")->capture_default_str();
    cmd->add_flag("--resume", r->resume, "continue from the latest checkpoint in --out");
    cmd->add_option("--init", r->init,
                    "fine-tune: start G from this model file or checkpoint folder (its config; "
                    "D and optimisers fresh); a new run only");
    cmd->add_option("-s,--seed", r->seed, "seed of every random draw")->capture_default_str();
    cmd->add_option("--device", r->device, "cpu or cuda")->capture_default_str();
    cmd->add_option("--checkpoint-every", r->checkpoint_every, "iterations between checkpoints")
        ->capture_default_str();
    cmd->add_option("--sample-every", r->sample_every, "iterations between sample grids")
        ->capture_default_str();
    cmd->add_option("--log-every", r->log_every, "iterations between log records")
        ->capture_default_str();
    cmd->add_option("--keep", r->keep, "checkpoints to keep")->capture_default_str();
    cmd->add_option("--lr", r->lr,
                    "Adam's learning rate of G and D (a resumed run takes this one, not the "
                    "checkpoint's)")
        ->capture_default_str();
    cmd->add_option("--position-weight", r->position_weight,
                    "weight of the vertical-position regression loss (D and G); a resumed run "
                    "takes this one")
        ->capture_default_str();
    cmd->add_option("--diversity", r->diversity, "diversity loss: paper or angular")
        ->capture_default_str();
    cmd->add_option("--max-scale", r->max_scale, "random scale of the short side before cropping")
        ->capture_default_str();
    cmd->add_option("--r1", r->r1,
                    "R1 penalty weight gamma on D's real inputs (default: 10 with stylegan2 and "
                    "mixed, on the pixel D; 0 with projected)");
    cmd->add_option("--discriminator", r->discriminator,
                    "stylegan2 (default for a new run), projected (frozen MobileNetV2 features, "
                    "docs/training.md) or mixed (both, losses summed); on --resume the "
                    "checkpoint's unless given");
    cmd->add_option("--features", r->features, "projected and mixed: MobileNetV2 weights (docs/features.md)")
        ->capture_default_str();
    cmd->add_option("--augment", r->augment,
                    "D's input augmentation: ada (adaptive, default for a new run), diffaug or "
                    "none; on --resume the checkpoint's unless given");
    cmd->add_option("--augment-p", r->augment_p, "ada: initial probability p")
        ->capture_default_str();
    cmd->add_option("--ada-target", r->ada_target, "ada: target of r_t = E[sign(D(real))]")
        ->capture_default_str();
    cmd->add_option("--ada-kimg", r->ada_kimg, "ada: thousands of images for p to move by 1")
        ->capture_default_str();
    cmd->add_option("--rank", r->rank, "process rank (env RANK)")->capture_default_str();
    cmd->add_option("--world-size", r->world_size, "processes (env WORLD_SIZE)")
        ->capture_default_str();
    cmd->add_option("--master-addr", r->master_addr, "rendezvous address (env MASTER_ADDR)")
        ->capture_default_str();
    cmd->add_option("--master-port", r->master_port, "rendezvous port (env MASTER_PORT)")
        ->capture_default_str();
    cmd->add_flag("-q,--quiet", *quiet, "no progress output");
    return std::make_pair(cmd, Runner([r, quiet] {
        std::signal(SIGINT, on_signal);
        std::signal(SIGTERM, on_signal);
        ProgressBar bar("train", *quiet || r->rank != 0, 0, "steps");
        const auto res = run_train(*r, [&](const Progress& p) { bar.update(p); }, &g_stop);
        bar.finish();
        if (r->rank == 0) {
            std::cout << res.checkpoint << "\n";
            std::fprintf(stderr, "%s at step %lld after %.1fs; checkpoint %s\n",
                         res.interrupted ? "stopped" : "finished", (long long)res.step, res.seconds,
                         res.checkpoint.c_str());
        }
        return 0;
    }));
});

}  // namespace
}  // namespace igan::cli
