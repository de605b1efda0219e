#pragma once
// The one comparison helper: explicit atol/rtol, reports the worst element and where it is.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

namespace igan::test {

::testing::AssertionResult all_close(const torch::Tensor& actual, const torch::Tensor& expected,
                                     double atol, double rtol = 0.0);

std::string data_path(const std::string& name);

}  // namespace igan::test
