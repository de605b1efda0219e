#pragma once
// The one comparison helper: explicit atol/rtol, reports the worst element and where it is.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "core/error.h"
#include "render/renderer.h"
#include "render/styled_generator.h"
#include "train/trainer.h"

namespace igan::test {

::testing::AssertionResult all_close(const torch::Tensor& actual, const torch::Tensor& expected,
                                     double atol, double rtol = 0.0);

std::string data_path(const std::string& name);

// The message of the igan::Error `f` throws; "" and a test failure when it throws none.
template <typename F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "no igan::Error";
    return "";
}

// A fresh temporary folder named after the running test and the process, removed with its
// contents at the end of the scope.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string operator/(const std::string& name) const;
    const std::string& str() const { return path_; }

private:
    std::string path_;
};

// A narrow 2-upsampling generator with every mechanism of the real one (SS margin, up convs,
// ToRGB skips, noise at every layer), cheap enough for unit tests.
GeneratorConfig micro_generator_config(int full_size = 64);
// That generator with random weights (torch seed 3) and every noise strength set.
Generator micro_generator(double noise_strength = 0.3);
// That generator with random weights (torch seed 3), noise strengths set to `noise_strength` so
// that noise alignment matters, styled by global-latent seed 1.
std::unique_ptr<StyledGenerator> random_patch_model(const GeneratorConfig& config,
                                                    double noise_strength = 0.3,
                                                    uint64_t style_seed = 1,
                                                    torch::Device device = torch::kCPU);

// Render options for tests: canvas seed 9 unless given, `workers` concurrent passes.
RenderOptions opts(int64_t tile, int64_t batch = 1, uint64_t seed = 9, int64_t workers = 1);

// The render contract for a faster form of some layers: use(false) selects the reference form,
// use(true) the one under test (left in effect). A region of config's random model rendered
// whole in both is within 1e-5 of the largest magnitude and not equal (the form ran), and tiled
// renders (7, 16 and 33 px) equal the whole one within the contract's 1e-4.
void expect_form_keeps_render_contract(const GeneratorConfig& config,
                                       const std::function<void(bool)>& use,
                                       const std::string& form);

// Training on a very small model (2 upsamplings, 29-px patches), so that steps take milliseconds.
ModelConfig micro_train_config();
// Synthetic "photos" in a fresh temporary folder named after `name`, plus one unreadable file.
std::string make_train_dataset(const std::string& name);
TrainOptions micro_train_options(const std::string& data, int64_t batch);

}  // namespace igan::test
