#pragma once
// Fitted coarse heads of a model (render/coarse_head.h) as Engine holds them, by level.
#include <igan/igan.h>

#include <map>
#include <memory>
#include <string>

#include "model/config.h"
#include "render/coarse_head.h"
#include "render/coarse_student.h"

namespace igan {

struct LoadedCoarseHeads {
    std::map<int, std::shared_ptr<const CoarseHead>> heads;  // by level (< 0)
    std::map<int, double> psnr;                              // held-out PSNR at fit time
    std::map<int, std::shared_ptr<const CoarseStudent>> students;  // by level
    std::string note;  // non-empty: the file belongs to other weights and was not loaded
};

// Strict: a wrong arch, shape or dtype, a missing or an unexpected tensor, a student's
// configuration that does not fit the model, is an igan::Error listing every problem; a file
// fitted for other weights only sets `note`. A file holds heads (all of the model's), students,
// or both.
LoadedCoarseHeads load_coarse_heads(const std::string& path, const GeneratorConfig& config,
                                    const std::string& model_sha256);

}  // namespace igan
