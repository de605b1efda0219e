#include "common/test_util.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <vector>

#include "io/png.h"
#include "render/styled_generator.h"

namespace igan::test {

::testing::AssertionResult all_close(const torch::Tensor& actual, const torch::Tensor& expected,
                                     double atol, double rtol) {
    if (actual.sizes() != expected.sizes()) {
        std::ostringstream s;
        s << "shape " << actual.sizes() << " != expected " << expected.sizes();
        return ::testing::AssertionFailure() << s.str();
    }
    const auto a = actual.to(torch::kCPU, torch::kDouble).flatten();
    const auto e = expected.to(torch::kCPU, torch::kDouble).flatten();
    const auto excess = (a - e).abs() - (atol + rtol * e.abs());
    const int64_t worst = excess.argmax().item<int64_t>();
    const double max_abs = (a - e).abs().max().item<double>();
    if (excess[worst].item<double>() <= 0 && !a.isnan().any().item<bool>())
        return ::testing::AssertionSuccess() << "max abs diff " << max_abs;
    std::ostringstream s;
    s << "max abs diff " << max_abs << "; worst at flat index " << worst << ": "
      << a[worst].item<double>() << " vs " << e[worst].item<double>() << " (atol " << atol
      << ", rtol " << rtol << ")";
    return ::testing::AssertionFailure() << s.str();
}

std::string data_path(const std::string& name) { return std::string(IGAN_TEST_DATA) + "/" + name; }

TempDir::TempDir() {
    namespace fs = std::filesystem;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = (fs::temp_directory_path() / (std::string("igan_") + info->test_suite_name() + "_" +
                                          info->name() + "_" + std::to_string(::getpid())))
                .string();
    fs::remove_all(path_);
    fs::create_directories(path_);
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::operator/(const std::string& name) const { return path_ + "/" + name; }

GeneratorConfig micro_generator_config(int full_size) {
    GeneratorConfig c;
    c.global_latent_dim = 16;
    c.local_latent_dim = 8;
    c.n_mlp = 2;
    c.ss_n_layers = 2;
    c.ss_unfold_radius = 1;
    c.ts_conv_out_channels = {16, 16, 8, 8};
    c.full_size = full_size;
    return c;
}

namespace {

Generator random_generator(const GeneratorConfig& config, double noise_strength) {
    torch::manual_seed(3);
    Generator g(config);
    torch::NoGradGuard no_grad;
    for (auto& conv : g->texture_synthesizer->convs) conv->noise->weight.fill_(noise_strength);
    return g;
}

}  // namespace

Generator micro_generator(double noise_strength) {
    return random_generator(micro_generator_config(), noise_strength);
}

std::unique_ptr<StyledGenerator> random_patch_model(const GeneratorConfig& config,
                                                    double noise_strength, uint64_t style_seed,
                                                    torch::Device device) {
    auto g = random_generator(config, noise_strength);
    g->to(device);
    return StyledGenerator::for_seed(g, device, style_seed);
}

RenderOptions opts(int64_t tile, int64_t batch, uint64_t seed, int64_t workers) {
    RenderOptions o;
    o.tile = tile;
    o.batch = batch;
    o.workers = workers;
    o.fields.seed = seed;
    return o;
}

ModelConfig micro_train_config() {
    ModelConfig c;
    c.name = "micro";
    c.generator = micro_generator_config(48);
    c.discriminator.patch_size = c.generator.patch_size();
    c.discriminator.d_extra_multiplier = 1.0 / 32;
    c.discriminator.stddev_group = 4;
    return c;
}

// Synthetic "photos": sky-like gradient above, textured ground below.
std::string make_train_dataset(const std::string& name) {
    namespace fs = std::filesystem;
    const fs::path dir =
        fs::temp_directory_path() / ("igan_train_data_" + name + "_" + std::to_string(::getpid()));
    // Per-process names keep parallel test processes apart; each removes its own on exit.
    static struct Created {
        std::vector<fs::path> dirs;
        ~Created() {
            std::error_code ignored;
            for (const auto& d : dirs) fs::remove_all(d, ignored);
        }
    } created;
    fs::remove_all(dir);
    fs::create_directories(dir);
    created.dirs.push_back(dir);
    for (int k = 0; k < 3; ++k) {
        const int64_t w = 90 + 10 * k, h = 64;
        std::vector<uint8_t> px(size_t(w * h * 3));
        for (int64_t y = 0; y < h; ++y)
            for (int64_t x = 0; x < w; ++x)
                for (int c = 0; c < 3; ++c)
                    px[(y * w + x) * 3 + c] = uint8_t(y < h / 2 ? 120 + 2 * y + 20 * c
                                                                : (x * 7 + y * 13 + 40 * c + k * 30) % 200);
        PngWriter png((dir / ("img" + std::to_string(k) + ".png")).string(), w, h, {});
        png.write_rows(px.data(), h);
        png.finish();
    }
    // An unreadable file must be skipped, not fatal.
    std::FILE* f = std::fopen((dir / "broken.jpg").c_str(), "wb");
    std::fputs("not a jpeg", f);
    std::fclose(f);
    return dir.string();
}

TrainOptions micro_train_options(const std::string& data, int64_t batch) {
    TrainOptions o;
    o.model = micro_train_config();
    o.data.folder = data;
    o.data.full_size = o.model.generator.full_size;
    o.data.patch_size = o.model.generator.patch_size();
    o.data.seed = 5;
    o.batch = batch;
    o.seed = 5;
    o.d_reg_every = 2;  // exercise R1 and path length within a few steps
    o.g_reg_every = 2;
    return o;
}

void expect_form_keeps_render_contract(const GeneratorConfig& config,
                                       const std::function<void(bool)>& use,
                                       const std::string& form) {
    auto model = random_patch_model(config);
    PatchModel& m = *model;
    const Rect r{-37, 11, 61, 45};
    use(false);
    const auto reference = render_region(m, r, opts(std::max(r.w, r.h)));
    use(true);
    const auto direct = render_region(m, r, opts(std::max(r.w, r.h)));
    const double scale = reference.abs().max().item<double>();
    EXPECT_TRUE(all_close(direct, reference, 1e-5 * scale)) << form;
    EXPECT_GT((direct - reference).abs().max().item<double>(), 0.0) << form << " did not run";
    for (int64_t tile : {7, 16, 33}) {
        const auto tiled = render_region(m, r, opts(tile, 1, 9, 2));
        EXPECT_TRUE(all_close(tiled, direct, 1e-4)) << form << ", tile " << tile;
    }
}

}  // namespace igan::test
