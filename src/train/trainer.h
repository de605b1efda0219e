#pragma once
// The InfinityGAN trainer (train.py of hubert0527/infinityGAN @ a9b45dd; docs/training.md):
// non-saturating logistic loss, lazy R1, path-length regularisation, diversity loss on G_S,
// vertical-position regression, style mixing, Adam with the lazy-regularisation correction, EMA.
// All randomness of step t is a pure function of (seed, t): a run resumed from a checkpoint, or
// split over data-parallel ranks, follows the same trajectory.
#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/discriminator.h"
#include "model/generator.h"
#include "model/losses.h"
#include "train/augment.h"
#include "train/data.h"
#include "train/projected_discriminator.h"

namespace igan {

struct TrainOptions {
    ModelConfig model;
    DataOptions data;
    int64_t batch = 16;  // per process
    int64_t iters = 1000;
    double lr = 0.002;
    double r1 = 10;  // 0: no R1 step and no lazy-regularisation correction of D's Adam
    int d_reg_every = 16;
    double path_regularize = 2;
    int path_batch_shrink = 2;
    int g_reg_every = 4;
    double mixing = 0.9;
    double diversity_z_w = 1;
    DiversityForm diversity = DiversityForm::kPaper;
    double coord_ac_w = 1;
    double ema_half_life_images = 10000;  // the original: 0.5^(32/10k) per step
    AugmentMode augment = AugmentMode::kNone;
    double augment_p = 0;  // initial p of ada (diffaug ignores it)
    AdaOptions ada;
    DiscriminatorKind discriminator = DiscriminatorKind::kStyleGan2;
    // projected: the frozen feature network (the caller loads it; model/ and the trainer's
    // tests need no file) and its file's sha256, recorded in checkpoints ("" = not from a file).
    MobileNetV2Features features{nullptr};
    std::string features_sha256;
    ProjectedDiscriminatorConfig projected;
    std::string init;  // where G started from (fine-tuning), recorded in checkpoints
    uint64_t seed = 0;
    std::string device = "cpu";
    int rank = 0, world_size = 1;
    std::string master_addr = "127.0.0.1";
    int master_port = 29500;
};

// One record per step.
struct StepStats {
    int64_t step = 0;
    double d_loss = 0, g_loss = 0, d_real = 0, d_fake = 0, ac_real = 0, ac_fake = 0,
           diversity = 0, r1 = 0, path = 0, path_length_mean = 0, augment_p = 0, ada_rt = 0;
    bool did_r1 = false, did_path = false;
};

class Trainer {
public:
    explicit Trainer(const TrainOptions& options);
    ~Trainer();

    void step();  // one iteration; advances step()
    int64_t current_step() const { return step_; }
    const StepStats& last_stats() const { return stats_; }
    bool is_main_rank() const { return options_.rank == 0; }

    Generator& generator() { return g_; }
    Generator& generator_ema() { return g_ema_; }
    // The ones options().discriminator names (mixed: both); the other is null.
    Discriminator& discriminator() { return d_; }
    ProjectedDiscriminator& projected_discriminator() { return pd_; }
    const TrainOptions& options() const { return options_; }
    const ImageDataset& dataset() const { return *data_; }
    const AdaState& ada_state() const { return ada_; }
    // Adam's learning rates now (G, D): the run's lr times the lazy-regularisation ratio.
    std::pair<double, double> learning_rates() const;
    // False after resuming from a checkpoint without optim_*.pt (fresh Adam moments).
    bool moments_restored() const { return moments_restored_; }

    // Fine-tuning start: G and G_ema from these files (strict; same config).
    void init_generators(const std::string& g_file, const std::string& g_ema_file);
    // Checkpoint folder: G/D/G_ema safetensors, optimiser states, trainer_state.json.
    void save_checkpoint(const std::string& dir) const;
    void load_checkpoint(const std::string& dir);

private:
    struct Latents;
    // The torch generator of one purpose of one step: a pure function of (seed, step, purpose).
    at::Generator draw_generator(int64_t step, uint64_t purpose) const;
    Latents sample_latents(int64_t step, uint64_t purpose, int64_t global_batch, int64_t begin,
                           int64_t end) const;
    struct Fake {
        torch::Tensor image, structure, styles;
    };
    Fake generate(const Latents& z);
    // D's view of a batch: augmented with this step's draw of `purpose` (identity without
    // augmentation). Rows [begin, begin + B) of the global batch.
    AugmentBatch augment(const torch::Tensor& images, const torch::Tensor& labels, uint64_t purpose);
    // The discriminators in use: their trainable module and their outputs (projected first).
    torch::nn::Module& d_module() const;
    std::vector<DiscriminatorOutput> d_forward(const torch::Tensor& images);
    // Gradients of `loss` (averaged over ranks), then one step of `opt` over `m`.
    void update(torch::optim::Adam& opt, torch::nn::Module& m, const torch::Tensor& loss);
    void d_step(const AugmentBatch& real);
    void r1_step(const AugmentBatch& real);
    void g_step();
    void path_step();
    void ema_update();
    void all_reduce_grads(torch::nn::Module& m);
    double all_reduce_mean(double v);

    TrainOptions options_;
    torch::Device device_;
    Generator g_{nullptr}, g_ema_{nullptr};
    Discriminator d_{nullptr};
    ProjectedDiscriminator pd_{nullptr};
    std::shared_ptr<torch::nn::Module> d_pair_;  // mixed: "projected" and "pixel" in one module
    std::unique_ptr<torch::optim::Adam> g_opt_, d_opt_;
    std::unique_ptr<ImageDataset> data_;
    std::unique_ptr<Prefetcher> prefetch_;
    struct Comm;  // data-parallel collectives (c10d Gloo or NCCL), absent for one process
    std::unique_ptr<Comm> comm_;
    int64_t step_ = 0;
    double mean_path_length_ = 0;
    double ema_decay_ = 0;
    bool moments_restored_ = true;
    AdaState ada_;
    StepStats stats_;
};

// The c10d backends this build has (CMake finds them with the LibTorch it builds against).
struct DataParallelSupport {
    bool gloo = false, nccl = false;
};
DataParallelSupport data_parallel_support();
// The backend `world_size` processes on CUDA or the CPU use: "" for one process, NCCL for CUDA
// where available, else Gloo. Throws UsageError saying what is missing when neither fits.
std::string data_parallel_backend(int world_size, bool cuda, const DataParallelSupport& support);

// The augmentation a checkpoint was trained with ("none" for checkpoints from before it).
std::string checkpoint_augment_mode(const std::string& dir);

// The discriminator a checkpoint was trained with ("stylegan2" for checkpoints from before the
// choice existed).
std::string checkpoint_discriminator_kind(const std::string& dir);

// Latest complete checkpoint folder under `run_dir`/checkpoints, or "" if none.
std::string latest_checkpoint(const std::string& run_dir);

}  // namespace igan
