#include "train/trainer.h"

#if IGAN_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if IGAN_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <ATen/record_function.h>

#include <cmath>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "model/coords.h"
#include "model/state.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "weights/model_file.h"

namespace igan {

namespace fs = std::filesystem;

namespace {

// Purposes keep the random draws of one step independent of each other.
// A step has eight purposes (0..7).
enum : uint64_t {
    kGeneratorAugmentDraw = 0,
    kDiscriminatorDraw = 1,
    kGeneratorDraw = 2,
    kPathDraw = 3,
    kRealAugmentDraw = 4,
    kFakeAugmentDraw = 5,
    kPathNoiseDraw = 7
};

void set_requires_grad(torch::nn::Module& m, bool on) {
    for (auto& p : m.parameters()) p.set_requires_grad(on);
}

torch::Tensor slice(const torch::Tensor& t, int64_t begin, int64_t end) {
    return t.narrow(0, begin, end - begin);
}

}  // namespace

// The process groups are ProcessGroups in LibTorch 1.x and Backends in 2.x: closures hide that.
struct Trainer::Comm {
    std::function<void(std::vector<at::Tensor>&)> allreduce, broadcast;
};

DataParallelSupport data_parallel_support() { return {IGAN_HAVE_GLOO != 0, IGAN_HAVE_NCCL != 0}; }

std::string data_parallel_backend(int world_size, bool cuda, const DataParallelSupport& support) {
    if (world_size <= 1) return "";
    if (cuda && support.nccl) return "nccl";
    if (support.gloo) return "gloo";
    throw UsageError("--world-size " + std::to_string(world_size) +
                     ": this igan was built without " + (cuda ? "NCCL or Gloo" : "Gloo") +
                     ", which data-parallel training on " + (cuda ? "CUDA" : "the CPU") +
                     " needs (its LibTorch lacks them or their headers: install libgloo-dev and "
                     "rebuild, see README), or train with --world-size 1");
}

struct Trainer::Latents {
    torch::Tensor global;  // (B, 2, G)
    torch::Tensor local;   // (B, L, S, S)
    TrainingCoords coords;
    std::vector<torch::Tensor> noises;
    int64_t inject_index = -1;
};

Trainer::Trainer(const TrainOptions& o) : options_(o), device_(torch::kCPU) {
    if (o.device != "cpu") {
        if (!torch::cuda::is_available()) throw UsageError("--device " + o.device + ": CUDA is not available");
        device_ = torch::Device(o.device);
    }
    if (o.batch < 2 || o.batch % 2 != 0)
        throw UsageError("--batch must be even and >= 2 (samples are paired for the diversity loss)");
    if (o.batch / o.path_batch_shrink < 1) throw UsageError("--batch too small for path_batch_shrink");
    if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size)
        throw UsageError("rank " + std::to_string(o.rank) + " is outside world size " +
                         std::to_string(o.world_size));
    const std::string backend =
        data_parallel_backend(o.world_size, device_.is_cuda(), data_parallel_support());
    // NCCL wants one device per rank: plain "cuda" spreads the ranks over the visible devices.
    if (device_.is_cuda() && !device_.has_index() && o.world_size > 1) {
        const int64_t devices = std::max<int64_t>(1, int64_t(torch::cuda::device_count()));
        device_ = torch::Device(torch::kCUDA, c10::DeviceIndex(o.rank % devices));
    }
    {
        // Initial weights come from the global torch generator: serialise so that trainers built
        // on several threads (ranks in one process) start the same way.
        static std::mutex init_mutex;
        std::lock_guard<std::mutex> lock(init_mutex);
        torch::manual_seed(o.seed);
        g_ = Generator(o.model.generator);
        g_ema_ = Generator(o.model.generator);
        if (o.discriminator != DiscriminatorKind::kStyleGan2) {
            if (!o.features) throw Error("the projected discriminator needs a feature network");
            auto pc = o.projected;
            pc.coord_num_dir = o.model.discriminator.coord_num_dir;
            options_.features->to(device_);
            // The fixed mixing is drawn from the seed, independent of the global generator.
            pd_ = ProjectedDiscriminator(pc, options_.features, splitmix64(o.seed ^ 0x9d15c0u));
        }
        if (o.discriminator != DiscriminatorKind::kProjected) d_ = Discriminator(o.model.discriminator);
        if (pd_ && d_) {
            d_pair_ = std::make_shared<torch::nn::Module>("MixedDiscriminator");
            d_pair_->register_module("projected", pd_);
            d_pair_->register_module("pixel", d_);
        }
    }
    {
        torch::NoGradGuard no_grad;
        auto src = state_dict(*g_);
        for (auto& [k, t] : state_dict(*g_ema_)) t.copy_(src.at(k));
    }
    g_->to(device_);
    g_ema_->to(device_);
    d_module().to(device_);
    g_ema_->eval();
    set_requires_grad(*g_ema_, false);

    const double g_ratio = double(o.g_reg_every) / (o.g_reg_every + 1);
    // Without R1 D has no lazy regulariser to correct for.
    const double d_ratio = o.r1 > 0 ? double(o.d_reg_every) / (o.d_reg_every + 1) : 1.0;
    g_opt_ = std::make_unique<torch::optim::Adam>(
        g_->parameters(), torch::optim::AdamOptions(o.lr * g_ratio)
                              .betas({0.0, std::pow(0.99, g_ratio)}));
    d_opt_ = std::make_unique<torch::optim::Adam>(
        d_module().parameters(), torch::optim::AdamOptions(o.lr * d_ratio)
                              .betas({0.0, std::pow(0.99, d_ratio)}));
    ema_decay_ = std::pow(0.5, 32.0 / o.ema_half_life_images);
    ada_.p = o.augment == AugmentMode::kAda ? o.augment_p : 0;

    if (o.world_size > 1) {
        c10d::TCPStoreOptions so;
        so.port = uint16_t(o.master_port);
        so.isServer = o.rank == 0;
        so.numWorkers = size_t(o.world_size);
        auto store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
        comm_ = std::make_unique<Comm>();
        const auto bind = [this](auto group) {
            comm_->allreduce = [group](std::vector<at::Tensor>& t) { group->allreduce(t)->wait(); };
            comm_->broadcast = [group](std::vector<at::Tensor>& t) { group->broadcast(t)->wait(); };
        };
#if IGAN_HAVE_NCCL
        if (backend == "nccl")
            bind(c10::make_intrusive<c10d::ProcessGroupNCCL>(store, o.rank, o.world_size));
#endif
#if IGAN_HAVE_GLOO
        if (backend == "gloo") {
            auto go = c10d::ProcessGroupGloo::Options::create();
            go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(o.master_addr));
            bind(c10::make_intrusive<c10d::ProcessGroupGloo>(store, o.rank, o.world_size, go));
        }
#endif
        // Identical start on every rank: rank 0's weights.
        for (torch::nn::Module* m : {static_cast<torch::nn::Module*>(g_.get()),
                                     static_cast<torch::nn::Module*>(g_ema_.get()),
                                     &d_module()}) {
            std::vector<at::Tensor> ts;
            for (auto& p : m->parameters()) ts.push_back(p.data());
            for (auto& b : m->buffers()) ts.push_back(b);
            for (auto& t : ts) {
                std::vector<at::Tensor> one{t};
                comm_->broadcast(one);
            }
        }
    }
    data_ = std::make_unique<ImageDataset>(o.data, [&](const std::string& w) {
        if (o.rank == 0) std::fprintf(stderr, "warning: %s\n", w.c_str());
    });
}

Trainer::~Trainer() = default;

torch::nn::Module& Trainer::d_module() const {
    if (d_pair_) return *d_pair_;
    if (pd_) return *pd_.ptr();
    return *d_.ptr();
}

std::vector<DiscriminatorOutput> Trainer::d_forward(const torch::Tensor& images) {
    RECORD_USER_SCOPE("d_forward");
    std::vector<DiscriminatorOutput> out;
    if (pd_) out.push_back(pd_->forward(images));
    if (d_) out.push_back(d_->forward(images));
    return out;
}

namespace {

// Losses of several discriminators add up; the logged logits are their means.
template <typename F>
torch::Tensor sum_over(const std::vector<DiscriminatorOutput>& outs, F&& loss) {
    auto total = loss(outs[0], 0);
    for (size_t i = 1; i < outs.size(); ++i) total = total + loss(outs[i], i);
    return total;
}

double mean_logit(const std::vector<DiscriminatorOutput>& outs) {
    double sum = 0;
    for (const auto& o : outs) sum += o.d_patch.mean().item<double>();
    return sum / double(outs.size());
}

}  // namespace

at::Generator Trainer::draw_generator(int64_t step, uint64_t purpose) const {
    return at::make_generator<at::CPUGeneratorImpl>(
        splitmix64(options_.seed ^ splitmix64(uint64_t(step) * 8 + purpose + (kTrainStream << 40))));
}

Trainer::Latents Trainer::sample_latents(int64_t step, uint64_t purpose, int64_t global_batch,
                                         int64_t begin, int64_t end) const {
    RECORD_USER_SCOPE("latents");  // phases of a step, for bench/train_bench.cpp
    const auto& c = options_.model.generator;
    auto gen = draw_generator(step, purpose);
    Latents z;
    const int64_t b = global_batch, g = c.global_latent_dim, s = c.ss_input_size();
    auto global = torch::randn({b, 2, g}, gen);
    const bool mix = torch::rand({1}, gen).item<double>() < options_.mixing;
    if (mix) {
        z.inject_index = torch::randint(1, c.n_latent(), {1}, gen).item<int64_t>();
    } else {
        global.select(1, 1).copy_(global.select(1, 0));
    }
    auto local = torch::randn({b, c.local_latent_dim, s, s}, gen);
    auto coords = sample_training_coords(c, b, gen);
    // Pairs (2k, 2k+1) share style and position and differ only in local latents.
    auto paired = coords.coords.clone();
    for (int64_t i = 0; i + 1 < b; i += 2) {
        paired[i + 1].copy_(paired[i]);
        global[i + 1].copy_(global[i]);
    }
    for (int64_t size : ts_output_sizes(c, c.ts_input_size))
        z.noises.push_back(slice(torch::randn({b, 1, size, size}, gen), begin, end).to(device_));
    z.global = slice(global, begin, end).to(device_);
    z.local = slice(local, begin, end).to(device_);
    z.coords.coords = slice(paired, begin, end).to(device_);
    z.coords.ac_label = slice(coords.ac_label, begin, end).to(device_);
    return z;
}

Trainer::Fake Trainer::generate(const Latents& z) {
    RECORD_USER_SCOPE("g_forward");
    Fake f;
    f.styles = g_->texture_synthesizer->styles_from_latent(z.global, z.inject_index);
    f.structure = g_->structure_synthesizer(z.global.select(1, 0), z.local, z.coords.coords);
    f.image = g_->texture_synthesizer(f.structure, f.styles, z.noises);
    return f;
}

void Trainer::all_reduce_grads(torch::nn::Module& m) {
    if (!comm_) return;
    std::vector<torch::Tensor> grads;
    for (auto& p : m.parameters())
        if (p.grad().defined()) grads.push_back(p.grad());
    std::vector<at::Tensor> flat{torch::cat([&] {
        std::vector<torch::Tensor> v;
        for (auto& g : grads) v.push_back(g.flatten());
        return v;
    }())};
    comm_->allreduce(flat);
    flat[0].div_(options_.world_size);
    int64_t offset = 0;
    for (auto& g : grads) {
        g.copy_(flat[0].narrow(0, offset, g.numel()).view_as(g));
        offset += g.numel();
    }
}

double Trainer::all_reduce_mean(double v) {
    if (!comm_) return v;
    std::vector<at::Tensor> t{torch::tensor({v}, torch::kFloat64).to(device_)};  // NCCL: on it
    comm_->allreduce(t);
    return t[0].item<double>() / options_.world_size;
}

AugmentBatch Trainer::augment(const torch::Tensor& images, const torch::Tensor& labels,
                              uint64_t purpose) {
    RECORD_USER_SCOPE("augment");
    if (options_.augment == AugmentMode::kNone) return {images, labels};
    const int64_t b = images.size(0), gb = b * options_.world_size, begin = options_.rank * b;
    auto gen = draw_generator(step_, purpose);
    const auto params = draw_augment_params(options_.augment, ada_.p, images.size(3), gb, gen);
    const double span = double(options_.data.full_size - options_.data.patch_size);
    return apply_augment({images, labels}, params.slice(begin, begin + b), std::max(1.0, span));
}

void Trainer::update(torch::optim::Adam& opt, torch::nn::Module& m, const torch::Tensor& loss) {
    opt.zero_grad();
    {
        RECORD_USER_SCOPE("backward");
        loss.backward();
    }
    all_reduce_grads(m);
    RECORD_USER_SCOPE("optimizer");
    opt.step();
}

void Trainer::d_step(const AugmentBatch& real) {
    RECORD_USER_SCOPE("d_step");
    set_requires_grad(*g_, false);
    set_requires_grad(d_module(), true);
    const int64_t b = options_.batch, gb = b * options_.world_size, begin = options_.rank * b;
    const auto z = sample_latents(step_, kDiscriminatorDraw, gb, begin, begin + b);
    torch::Tensor fake_image;
    {
        torch::NoGradGuard no_grad;
        fake_image = generate(z).image;
    }
    const auto fake = augment(fake_image, z.coords.ac_label, kFakeAugmentDraw);
    const auto dr = d_forward(real.images);
    const auto df = d_forward(fake.images);
    if (options_.augment == AugmentMode::kAda) ada_accumulate(ada_, dr[0].d_patch);
    const auto adv = sum_over(dr, [&](const DiscriminatorOutput& r, size_t i) {
        return d_logistic_loss(r.d_patch, df[i].d_patch);
    });
    const auto ac_real = sum_over(dr, [&](const DiscriminatorOutput& r, size_t) {
        return coord_ac_loss(r.ac_coords_pred, real.labels);
    });
    const auto ac_fake = sum_over(df, [&](const DiscriminatorOutput& f, size_t) {
        return coord_ac_loss(f.ac_coords_pred, fake.labels);
    });
    const auto loss = adv + options_.coord_ac_w * (ac_real + ac_fake);
    update(*d_opt_, d_module(), loss);
    stats_.d_loss = adv.item<double>();
    stats_.d_real = mean_logit(dr);
    stats_.d_fake = mean_logit(df);
    stats_.ac_real = ac_real.item<double>();
}

void Trainer::r1_step(const AugmentBatch& real) {
    RECORD_USER_SCOPE("r1");
    auto images = real.images.detach().requires_grad_(true);
    // Mixed: the pixel D only (the projected heads go unregularised, as in Projected GAN).
    const auto out = d_ ? d_->forward(images).d_patch : pd_->forward(images).d_patch;
    const auto grad = torch::autograd::grad({out.sum()}, {images}, {}, true, true)[0];
    const auto penalty = grad.pow(2).flatten(1).sum(1).mean();
    const auto loss = options_.r1 / 2 * penalty * options_.d_reg_every + 0 * out[0][0];
    update(*d_opt_, d_module(), loss);
    stats_.r1 = penalty.item<double>();
}

void Trainer::g_step() {
    RECORD_USER_SCOPE("g_step");
    set_requires_grad(*g_, true);
    set_requires_grad(d_module(), false);
    const int64_t b = options_.batch, gb = b * options_.world_size, begin = options_.rank * b;
    const auto z = sample_latents(step_, kGeneratorDraw, gb, begin, begin + b);
    const auto fake = generate(z);
    const auto seen = augment(fake.image, z.coords.ac_label, kGeneratorAugmentDraw);
    const auto df = d_forward(seen.images);
    const auto adv = sum_over(df, [](const DiscriminatorOutput& f, size_t) {
        return g_nonsaturating_loss(f.d_patch);
    });
    const auto ac_fake = sum_over(df, [&](const DiscriminatorOutput& f, size_t) {
        return coord_ac_loss(f.ac_coords_pred, seen.labels);
    });
    auto loss = adv + options_.coord_ac_w * ac_fake;
    if (options_.diversity_z_w > 0) {
        RECORD_USER_SCOPE("diversity");
        auto d = diversity_distances(z.local, fake.structure, options_.diversity);
        // A ratio of batch means: every rank takes the whole batch's means (its gradient flows
        // through its own share), so that ranks equal one process with the whole batch.
        if (comm_)
            for (auto* t : {&d.z, &d.x})
                *t = *t + (all_reduce_mean(t->item<double>()) - t->detach());
        const auto div = diversity_ratio(d);
        loss = loss + options_.diversity_z_w * div;
        stats_.diversity = div.item<double>();
    }
    update(*g_opt_, *g_, loss);
    stats_.g_loss = adv.item<double>();
    stats_.ac_fake = ac_fake.item<double>();
}

// Path length: gradient of <image, noise> with respect to the W+ styles, mean over slots and
// dimensions (the original's choice), pulled toward its running mean.
void Trainer::path_step() {
    RECORD_USER_SCOPE("path");
    set_requires_grad(*g_, true);
    const int64_t b = options_.batch / options_.path_batch_shrink;
    const int64_t gb = b * options_.world_size, begin = options_.rank * b;
    const auto z = sample_latents(step_, kPathDraw, gb, begin, begin + b);
    const auto fake = generate(z);
    const int64_t h = fake.image.size(2), w = fake.image.size(3);
    auto gen = draw_generator(step_, kPathNoiseDraw);
    const auto noise = slice(torch::randn({gb, 3, h, w}, gen), begin, begin + b).to(device_) /
                       std::sqrt(double(h * w));
    const auto grad = torch::autograd::grad({(fake.image * noise).sum()}, {fake.styles}, {}, true,
                                            true)[0];
    const auto lengths = grad.pow(2).mean({1, 2}).sqrt();
    const double batch_mean = all_reduce_mean(lengths.mean().item<double>());
    mean_path_length_ += 0.01 * (batch_mean - mean_path_length_);
    const auto penalty = (lengths - mean_path_length_).pow(2).mean();
    const auto loss = options_.path_regularize * options_.g_reg_every * penalty + 0 * fake.image[0][0][0][0];
    update(*g_opt_, *g_, loss);
    stats_.path = penalty.item<double>();
    stats_.path_length_mean = mean_path_length_;
}

void Trainer::ema_update() {
    RECORD_USER_SCOPE("ema");
    torch::NoGradGuard no_grad;
    auto src = g_->named_parameters();
    for (auto& p : g_ema_->named_parameters()) p.value().lerp_(src[p.key()], 1 - ema_decay_);
}

void Trainer::step() {
    if (!prefetch_) {
        const int64_t begin = options_.rank * options_.batch;
        prefetch_ = std::make_unique<Prefetcher>(*data_, step_, begin, begin + options_.batch);
    }
    stats_ = StepStats{};
    stats_.step = step_;
    const Batch batch = prefetch_->next();
    const auto real = augment(batch.images.to(device_), batch.labels.to(device_).unsqueeze(1),
                              kRealAugmentDraw);
    d_step(real);
    if (options_.r1 > 0 && step_ % options_.d_reg_every == 0) {
        r1_step(real);
        stats_.did_r1 = true;
    }
    g_step();
    if (options_.path_regularize > 0 && step_ % options_.g_reg_every == 0) {
        path_step();
        stats_.did_path = true;
    }
    ema_update();
    if (options_.augment == AugmentMode::kAda) {
        ada_maybe_update(ada_, options_.ada, step_, options_.batch * options_.world_size,
                         [&](double sum, double count) {
                             // Equal batches on every rank: the mean of the ranks' sums and
                             // counts has the global ratio.
                             return std::make_pair(all_reduce_mean(sum), all_reduce_mean(count));
                         });
    }
    stats_.augment_p = ada_.p;
    stats_.ada_rt = ada_.rt;
    ++step_;
}

void Trainer::save_checkpoint(const std::string& dir) const {
    const fs::path final_dir(dir);
    fs::create_directories(final_dir.parent_path());
    remove_stale_temporaries(final_dir.parent_path().string());  // earlier failed checkpoints
    AtomicDir folder(dir);
    const fs::path tmp(folder.temp_path());
    save_module((tmp / "G.safetensors").string(), *g_, options_.model, kGeneratorArch, step_);
    save_module((tmp / "G_ema.safetensors").string(), *g_ema_, options_.model, kGeneratorArch,
                step_);
    // The projected D's file holds its heads and fixed mixing, not the feature network.
    save_module((tmp / "D.safetensors").string(), d_module(), options_.model,
                d_pair_ ? kMixedDiscriminatorArch
                : pd_   ? kProjectedDiscriminatorArch
                        : kDiscriminatorArch,
                step_);
    save_optimizer(*g_opt_, (tmp / "optim_g.pt").string());  // a full disk: Error, not SIGABRT
    save_optimizer(*d_opt_, (tmp / "optim_d.pt").string());
    nlohmann::json state = {{"step", step_},
                            {"mean_path_length", mean_path_length_},
                            {"seed", options_.seed},
                            {"batch", options_.batch},
                            {"lr", options_.lr},
                            {"position_weight", options_.coord_ac_w},
                            {"world_size", options_.world_size},
                            {"augment", augment_mode_name(options_.augment)},
                            {"discriminator", discriminator_kind_name(options_.discriminator)},
                            {"ada", {{"p", ada_.p},
                                     {"rt", ada_.rt},
                                     {"sign_sum", ada_.sign_sum},
                                     {"sign_count", ada_.sign_count}}},
                            {"config", nlohmann::json::parse(model_config_to_string(options_.model))}};
    if (pd_) state["features_sha256"] = options_.features_sha256;
    if (!options_.init.empty()) state["init"] = options_.init;
    {
        std::ofstream f(tmp / "trainer_state.json");
        f << state.dump(2) << "\n";
        if (!f) throw Error("cannot write " + (tmp / "trainer_state.json").string());
    }
    fs::remove_all(final_dir);
    folder.commit();  // every file and the folder synced, then renamed into place
}

namespace {

nlohmann::json read_trainer_state(const std::string& dir) {
    std::ifstream f(fs::path(dir) / "trainer_state.json");
    if (!f) throw Error(dir + ": no trainer_state.json (not a checkpoint folder)");
    try {
        return nlohmann::json::parse(f);
    } catch (const nlohmann::json::exception& e) {
        throw Error(dir + "/trainer_state.json: " + e.what());
    }
}

}  // namespace

std::string checkpoint_augment_mode(const std::string& dir) {
    const auto state = read_trainer_state(dir);
    return state.contains("augment") ? state.at("augment").get<std::string>() : "none";
}

std::string checkpoint_discriminator_kind(const std::string& dir) {
    return read_trainer_state(dir).value("discriminator", std::string("stylegan2"));
}

std::pair<double, double> Trainer::learning_rates() const {
    return {g_opt_->param_groups().at(0).options().get_lr(),
            d_opt_->param_groups().at(0).options().get_lr()};
}

namespace {

// Strict: every tensor of the module from the file, nothing else in it.
void load_module_file(torch::nn::Module& module, const std::string& path) {
    load_state_dict(module, read_safetensors(path).tensors, path);
}

}  // namespace

void Trainer::init_generators(const std::string& g_file, const std::string& g_ema_file) {
    load_module_file(*g_, g_file);
    load_module_file(*g_ema_, g_ema_file);
}

void Trainer::load_checkpoint(const std::string& dir) {
    const fs::path d(dir);
    const auto state = read_trainer_state(dir);
    const auto kind = state.value("discriminator", std::string("stylegan2"));
    const auto want = discriminator_kind_name(options_.discriminator);
    if (kind != want)
        throw Error(dir + " was trained with the " + kind + " discriminator, this run builds the " +
                    want + " one (resume with --discriminator " + kind + ")");
    if (pd_) {
        const auto sha = state.value("features_sha256", std::string());
        if (sha != options_.features_sha256)
            throw Error(dir + " was trained on the feature network with sha256 '" + sha +
                        "', this run loads one with sha256 '" + options_.features_sha256 +
                        "' (--features must name the file the run started with)");
    }
    init_generators((d / "G.safetensors").string(), (d / "G_ema.safetensors").string());
    load_module_file(d_module(), (d / "D.safetensors").string());
    // On this run's device, whichever device and LibTorch wrote it.
    // Checkpoints committed to the repository leave Adam's moments out (over half their size):
    // they then start at zero and re-estimate within ~100 steps (beta2 = 0.99). The learning
    // rates are always this run's.
    moments_restored_ = fs::exists(d / "optim_g.pt") && fs::exists(d / "optim_d.pt");
    if (moments_restored_) {
        load_optimizer(*g_opt_, (d / "optim_g.pt").string(), device_);
        load_optimizer(*d_opt_, (d / "optim_d.pt").string(), device_);
    }
    step_ = state.at("step").get<int64_t>();
    mean_path_length_ = state.at("mean_path_length").get<double>();
    // Checkpoints from before augmentation existed have no "ada": p starts at --augment-p.
    if (state.contains("ada") && options_.augment == AugmentMode::kAda &&
        state.value("augment", "none") == "ada") {
        const auto& a = state.at("ada");
        ada_.p = a.at("p").get<double>();
        ada_.rt = a.at("rt").get<double>();
        ada_.sign_sum = a.at("sign_sum").get<double>();
        ada_.sign_count = a.at("sign_count").get<double>();
    }
    prefetch_.reset();
}

std::string latest_checkpoint(const std::string& run_dir) {
    const fs::path root = fs::path(run_dir) / "checkpoints";
    if (!fs::is_directory(root)) return "";
    std::string best;
    for (const auto& e : fs::directory_iterator(root)) {
        const auto name = e.path().filename().string();
        if (name.rfind("step-", 0) != 0 || name.find(".tmp") != std::string::npos) continue;
        if (!fs::exists(e.path() / "trainer_state.json")) continue;
        if (name > fs::path(best).filename().string()) best = e.path().string();
    }
    return best;
}

}  // namespace igan
