#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <thread>

#include "weights/model_file.h"
#include "core/error.h"
#include "igan/igan.h"
#include "core/threads.h"
#include "model/gemm.h"
#include "model/winograd.h"
#include "model/winograd_up.h"
#include "igan/image.h"
#include "model/state.h"

namespace igan {

int default_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n > 0 ? int(n) : 1;
}

void set_threads(int threads) {
    const int n = threads > 0 ? threads : default_threads();
    set_process_intra_op_threads(n);
    set_blas_threads(n);
    set_png_threads(n);
}

namespace {

// Which BLAS the process really uses: Debian's reference BLAS is ~30x slower than OpenBLAS.
std::string blas_in_use() {
    using ConfigFn = const char* (*)();
    if (auto fn = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config")))
        return std::string("OpenBLAS (") + fn() + ")";
    if (dlsym(RTLD_DEFAULT, "mkl_get_version")) return "MKL";
    if (dlsym(RTLD_DEFAULT, "sgemm_")) return "reference BLAS (slow: install libopenblas0-pthread)";
    return "none found";
}

// How the CPU runs the 3x3 layers; a bad IGAN_CPU_CONV3X3 is reported, not thrown, so that
// --version still prints.
std::string conv3x3_in_use() {
    try {
        const Conv3x3Form form = cpu_conv3x3_form();
        std::string how = "direct";
        if (winograd_conv3x3_available() && form != Conv3x3Form::direct)
            how = form == Conv3x3Form::winograd
                      ? "Winograd F(4x4,3x3), oneDNN"
                      : "Winograd F(4x4,3x3), oneDNN, at >= 128 channels; else direct";
        return how + " (IGAN_CPU_CONV3X3=" + conv3x3_form_name(form) + ")";
    } catch (const Error& e) {
        return e.what();
    }
}

// How the CPU runs the up layers; a bad IGAN_CPU_UP is reported, not thrown, like IGAN_CPU_CONV3X3.
std::string up_in_use() {
    try {
        const UpForm form = cpu_up_form();
        std::string how = "tap planes";
        if (form == UpForm::winograd) how = "Winograd F(4,2) per phase";
        if (form == UpForm::automatic)
            how = "Winograd F(4,2) per phase at >= 128 channels and >= 64 px; else tap planes";
        return how + " (IGAN_CPU_UP=" + up_form_name(form) + ")";
    } catch (const Error& e) {
        return e.what();
    }
}

}  // namespace

std::string version_report() {
    std::string s = "igan " + version_string() + "\n";
    s += "LibTorch " + std::to_string(TORCH_VERSION_MAJOR) + "." +
         std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH) + "\n";
    s += std::string("CUDA: ") +
         (torch::cuda::is_available()
              ? "available (" + std::to_string(torch::cuda::device_count()) + " devices)"
              : "not available") +
         "\n";
    s += "BLAS: " + blas_in_use() + "\n";
    s += "GEMM of the up layers: " + sgemm_backend() + "\n";
    s += "3x3 layers on the CPU: " + conv3x3_in_use() + "\n";
    s += "up layers on the CPU: " + up_in_use() + "\n";
    s += "threads: " + std::to_string(at::get_num_threads()) + " (of " +
         std::to_string(default_threads()) + " cores)";
    return s;
}

std::vector<std::string> config_names() { return preset_names(); }

void init_model(const InitRequest& request) {
    const ModelConfig config = load_model_config(request.config);
    torch::manual_seed(request.seed);
    Generator g(config.generator);
    save_module(request.out, *g, config, kGeneratorArch, 0);
}

}  // namespace igan
