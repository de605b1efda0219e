#pragma once
// TensorFlow.js model files (https://www.tensorflow.org/js/guide/save_load, tfjs-core
// src/io/types.ts and io_utils.ts): model.json holds `modelTopology` (a Keras model config for
// a "layers-model", a GraphDef for a "graph-model") and `weightsManifest`, a list of groups
// whose binary shard files, concatenated in order, hold the weights back to back. A weight may be
// stored quantised: uint8/uint16 with value = min + scale * q, or float16.
// Also read: the browserify bundles that nsfwjs ships instead (model.min.js exports the
// model.json object as a JavaScript literal; each shard "P" is P.min.js exporting the shard's
// bytes as one base64 string). Nothing is executed: the literal is translated to JSON.
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace igan {

struct TfjsWeight {
    std::string name;          // e.g. "block_1_expand/kernel"
    at::Tensor value;          // float32, TensorFlow layout (conv kernels HWIO)
    std::string stored_dtype;  // "float32", "uint8", "uint16" or "float16"
};

struct TfjsModel {
    std::string format;               // "layers-model" or "graph-model"
    std::string topology_json;        // modelTopology as JSON text
    std::vector<TfjsWeight> weights;  // manifest order
};

// `path`: model.json or model.min.js, or a folder holding one of them. Shard paths are relative
// to that file. Throws igan::Error naming the file and the problem (sizes are all checked:
// shards shorter or longer than the manifest says are errors).
TfjsModel read_tfjs_model(const std::string& path);

}  // namespace igan
