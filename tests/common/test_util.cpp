#include "common/test_util.h"

#include <sstream>

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

}  // namespace igan::test
