#include "common/test_util.h"

#include <sstream>

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
                                                    double noise_strength, uint64_t style_seed) {
    return StyledGenerator::for_seed(random_generator(config, noise_strength), torch::kCPU,
                                     style_seed);
}

}  // namespace igan::test
