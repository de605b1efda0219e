#pragma once
// `igan convert`: weights of other implementations to igan's files (src/weights/convert.cpp).
#include <cstdint>
#include <string>
#include <vector>

#include "igan/error.h"

namespace igan {

// `igan convert` (docs/convert.md): a checkpoint of the original implementation (torch.save:
// train.py's {iter, g, d, g_ema, ...} dict or a bare state dict; ZIP or legacy format) to igan
// safetensors. Widths come from the tensor shapes; everything else from `config`: a preset name,
// an original YAML (configs/model/*.yaml) or a JSON config (igan's, or golden-style with
// `train_params`). Strict: every missing, unexpected, mis-shaped or non-float tensor is listed
// in one Error. The output carries the resolved config and the checkpoint's `iter` as its step.
struct ConvertRequest {
    std::string in, out;
    // "pth": an original checkpoint (below). "tfjs": a TF.js Keras MobileNetV2 or InceptionV3
    // (model.json or nsfwjs's model.min.js, or their folder) to igan's feature-network weights
    // (docs/features.md); part and config are then unused.
    std::string from = "pth";
    std::string part = "g_ema";    // g_ema, g or d
    std::string config = "paper";  // preset, .yaml or .json
};
struct ConvertResult {
    // "infinitygan.generator", "infinitygan.discriminator", "mobilenetv2.features" or
    // "inceptionv3.mixed5"
    std::string arch;
    std::string config_json;  // the resolved config, as written into the metadata
    int64_t tensors = 0, values = 0;
    int64_t step = 0;                // the checkpoint's `iter` (0 when absent)
    std::vector<std::string> notes;  // what was inferred, and where it overrode the config
};
// Bad requests (unknown part, a config that is missing or malformed) throw UsageError;
// unreadable, corrupt or mismatching checkpoints throw Error. `out` is written atomically.
ConvertResult convert_checkpoint(const ConvertRequest& request);

}  // namespace igan
