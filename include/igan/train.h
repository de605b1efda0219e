#pragma once
// `igan train`: the training driver (src/train/run.cpp) around the trainer: resume, fine-tuning,
// checkpoints, the JSONL log, sample grids and the loss plot (docs/training.md).
#include <cstdint>
#include <string>

#include "igan/progress.h"

namespace igan {

struct TrainRequest {
    std::string data;              // folder of .png/.jpg photos
    std::string config = "tiny";   // preset or JSON file (ignored on --resume: the checkpoint's)
    std::string out;               // run folder: checkpoints/, samples/, log.jsonl, losses.svg
    std::string device = "cpu";
    int64_t batch = 16;            // per process
    int64_t iters = 1000;          // total steps to reach (also when resuming)
    bool resume = false;
    // Fine-tuning: G and G_ema start from this model file or checkpoint folder (its config;
    // D and the optimisers start fresh). A new run only: not with --resume.
    std::string init;
    uint64_t seed = 0;
    int64_t checkpoint_every = 500, sample_every = 500, log_every = 10;
    int keep = 3;                  // checkpoints kept
    double lr = 0.002;             // Adam's learning rate of G and D (also on --resume)
    std::string diversity = "paper";  // "paper" (L1 mode seeking) or "angular" (original code)
    double max_scale = 1.5;        // random scale of the short side before cropping
    // Weight of the vertical-position regression terms (D's on reals and fakes, G's on fakes).
    double position_weight = 1;
    // D's input augmentation: none, diffaug or ada; "" = ada for a new run, the checkpoint's
    // choice on --resume.
    std::string augment;
    double augment_p = 0;          // ada's initial p
    double ada_target = 0.6;       // ada's target for r_t = E[sign(D(real))]
    double ada_kimg = 100;         // ada: thousands of images for p to move by 1
    // R1 weight (gamma); < 0: the discriminator's default, 10 for stylegan2 (the paper's, set for
    // 101-px patches) and 0 (no R1 step) for projected, as Projected GANs train without it.
    double r1 = -1;
    // D: "stylegan2" or "projected" (frozen MobileNetV2 features, docs/training.md); "" =
    // stylegan2 for a new run, the checkpoint's on --resume.
    std::string discriminator;
    std::string features = "data-cache/features/mobilenetv2.safetensors";  // for projected
    int rank = 0, world_size = 1;  // data parallelism (torchrun-style RANK/WORLD_SIZE)
    std::string master_addr = "127.0.0.1";
    int master_port = 29500;
};
struct TrainResult {
    int64_t step = 0;
    std::string checkpoint;
    double seconds = 0;
    bool interrupted = false;
};
// Trains until request.iters or until *stop becomes true; always ends with a checkpoint.
TrainResult run_train(const TrainRequest& request, const ProgressFn& progress,
                      const volatile bool* stop);

}  // namespace igan
