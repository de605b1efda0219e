// `igan fit-coarse`: fit the coarse heads, or distil the coarse students, that render zoomed-out
// levels at bounded cost (docs/serving.md, "Zoomed-out levels") and write them next to the model.
#include <cstdio>

#include "commands.h"
#include "progress.h"

namespace igan::cli {
namespace {

RegisterCommand fit_coarse_reg(75, [](CLI::App& app, Globals&) {
    auto r = std::make_shared<FitCoarseRequest>();
    auto quiet = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand(
        "fit-coarse",
        "fit linear heads that render zoomed-out levels from early features, or (--student) "
        "distil small networks that render them from the canvas's fields");
    cmd->add_option("-m,--model", r->model, "generator weights")->required();
    cmd->add_option("-o,--out", r->out,
                    "side file (default: MODEL's, NAME.coarse.safetensors, which igan serve and "
                    "the engine load)");
    cmd->add_option("--samples", r->samples, "regions (one seed each) to fit on")
        ->capture_default_str();
    cmd->add_option("--held-out", r->held_out, "regions of further seeds to measure on")
        ->capture_default_str();
    cmd->add_option("--side", r->side, "region side in pixels at the coarsest level")
        ->capture_default_str();
    cmd->add_option("-s,--seed", r->seed, "first seed; regions follow from it")
        ->capture_default_str();
    cmd->add_option("--y-range", r->y_range,
                    "region centres within this many native pixels of the horizon")
        ->capture_default_str();
    cmd->add_option("--ridge", r->ridge, "ridge, relative to the features' mean energy")
        ->capture_default_str();
    cmd->add_flag("--student", r->student,
                  "distil coarse students (small networks that render the levels from the "
                  "canvas's fields alone) instead of fitting the heads; the side file keeps its "
                  "heads");
    cmd->add_option("--student-levels", r->student_levels, "levels of the students")
        ->capture_default_str()
        ->delimiter(',');
    cmd->add_option("--student-samples", r->student_samples, "regions (one seed each) to fit on")
        ->capture_default_str();
    cmd->add_option("--student-side", r->student_side,
                    "region side in pixels at the finest student level")
        ->capture_default_str();
    cmd->add_option("--student-y-range", r->student_y_range,
                    "region centres within this many native pixels of the horizon (half of "
                    "them within a quarter of it)")
        ->capture_default_str();
    cmd->add_option("--student-seconds", r->student_seconds,
                    "wall-clock budget of the optimisation, over all students")
        ->capture_default_str();
    cmd->add_option("--student-steps", r->student_steps,
                    "at most this many Adam steps per student (0: until the budget)")
        ->capture_default_str();
    cmd->add_option("--student-channels", r->student_channels, "each student's width")
        ->capture_default_str();
    cmd->add_option("--student-dilations", r->student_dilations,
                    "dilations of each student's residual 3x3 layers (their sum is the margin a "
                    "tile reads)")
        ->capture_default_str()
        ->delimiter(',');
    cmd->add_option("--device", r->device, "cpu or cuda")->capture_default_str();
    cmd->add_flag("-q,--quiet", *quiet, "no progress");
    return std::make_pair(cmd, Runner([r, quiet] {
        if (!r->out.empty()) check_output_path(r->out);
        ProgressBar bar("fit-coarse", *quiet, 0, r->student ? "" : "regions");
        const auto result = fit_coarse(*r, [&](const Progress& p) { bar.update(p); });
        bar.finish();
        if (r->student) {
            std::printf("level  source   held-out PSNR dB (worst)  steps  L1 first -> last\n");
            for (const auto& l : result.levels)
                std::printf("%5d  %-7s  %8.2f (%6.2f)          %5lld  %.4f -> %.4f\n", l.level,
                            l.source.c_str(), l.held_out_psnr, l.held_out_min_psnr,
                            (long long)l.steps, l.first_loss, l.last_loss);
        } else {
            std::printf("level  source   held-out PSNR dB (worst)  partial sum PSNR dB\n");
            for (const auto& l : result.levels)
                std::printf("%5d  %-7s  %8.2f (%6.2f)          %s\n", l.level, l.source.c_str(),
                            l.held_out_psnr, l.held_out_min_psnr,
                            l.source == "z_s" ? "-" : std::to_string(l.partial_psnr).c_str());
        }
        std::printf("wrote %s in %.1f s\n", result.path.c_str(), result.seconds);
        return 0;
    }));
});

}  // namespace
}  // namespace igan::cli
