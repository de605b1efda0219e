// The one listing of why a state dict does not load into a module (model/state.h), shared by
// every strict loader.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "features/keras.h"
#include "model/state.h"

namespace igan {
namespace {

// load_state_dict and the feature networks' strict loader list problems alike.
TEST(StateProblems, OneListingForEveryLoader) {
    torch::nn::Linear net(3, 2);
    std::map<std::string, torch::Tensor> file = {{"weight", torch::zeros({2, 4})},
                                                 {"bias", torch::zeros({2}, torch::kInt)},
                                                 {"extra", torch::zeros({5})}};
    const auto problems = state_problems(state_dict(*net), specs_of(file));
    ASSERT_EQ(problems.size(), 3u);
    EXPECT_EQ(problems[0], "wrong dtype for bias: Int, expected a floating-point tensor");
    EXPECT_EQ(problems[1], "wrong shape for weight: file has [2, 4], model expects [2, 3]");
    EXPECT_EQ(problems[2], "unexpected extra [5]");
    file.erase("weight");
    const auto plain = test::error_of([&] { load_state_dict(*net, file, "f"); });
    const auto keras = test::error_of([&] { load_parameters_strictly(*net, file, "f", "it"); });
    for (const auto& line : state_problems(state_dict(*net), specs_of(file))) {
        EXPECT_NE(plain.find(line), std::string::npos) << line;
        EXPECT_NE(keras.find(line), std::string::npos) << line;
    }
    EXPECT_NE(plain.find("missing weight [2, 3]"), std::string::npos) << plain;
}

}  // namespace
}  // namespace igan
