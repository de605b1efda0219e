#!/usr/bin/env python3
"""The original InfinityGAN generator and igan, timed on the same machine, alternating.

The original (github.com/hubert0527/infinityGAN) runs in PyTorch on the CPU: its CUDA-only
pieces are replaced by plain PyTorch stand-ins written here (the fused bias + leaky ReLU, the
up/FIR/down filter), and the helpers the generator imports but never runs at inference (the
dataset module's lmdb/torchvision imports, the path-length loss) are stubbed. It makes one
training-size patch (101x101 for the paper config) at batch 1 on --threads threads; igan runs
`igan bench` with the same thread count, at tile 101 (the patch size; a seamless tile's margin
makes its MACs per pixel higher than the lone patch's) and at tile 256 (igan's default).
Rounds alternate the two, so a load that comes and goes hits both. MACs per output pixel are
counted for both: for the original by recording every convolution of one forward pass (FIR
filters left out, as igan's count leaves them out), for igan from its bench JSON, so the ratio
can be read per pixel and per MAC.

    python3 bench/side_by_side.py --original ~/src/infinityGAN --igan build/igan --threads 2

Needs PyTorch, NumPy, SciPy and PyYAML for the original (Debian: python3-torch python3-scipy
python3-yaml). Without PyTorch or without a clone of the original it says why and exits 0.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import types


def skip(reason):
    print(f"side_by_side: skipped: {reason}")
    sys.exit(0)


def namespace(value):
    """A YAML tree as nested attribute objects, as the original's code reads its config."""
    if isinstance(value, dict):
        return types.SimpleNamespace(**{k: namespace(v) for k, v in value.items()})
    return value


def install_stand_ins(torch):
    """Modules the original imports, replaced before it is imported."""
    F = torch.nn.functional

    def fused_leaky_relu(x, bias, negative_slope=0.2, scale=2 ** 0.5):
        shape = [1, bias.shape[0]] + [1] * (x.ndim - 2)
        return F.leaky_relu(x + bias.view(shape), negative_slope) * scale

    class FusedLeakyReLU(torch.nn.Module):
        def __init__(self, channel, negative_slope=0.2, scale=2 ** 0.5):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.zeros(channel))
            self.negative_slope, self.scale = negative_slope, scale

        def forward(self, x):
            return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)

    def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
        # Zero-insertion upsampling, padding (negative values crop) on both axes, correlation
        # with the flipped kernel (a true convolution), then keeping every down-th pixel.
        b, c, h, w = x.shape
        y = x.reshape(b * c, 1, h, w)
        if up > 1:
            z = y.new_zeros(b * c, 1, h * up, w * up)
            z[:, :, ::up, ::up] = y
            y = z
        y = F.pad(y, [pad[0], pad[1], pad[0], pad[1]])
        k = torch.flip(kernel, [0, 1]).view(1, 1, *kernel.shape).to(y)
        y = F.conv2d(y, k)[:, :, ::down, ::down]
        return y.reshape(b, c, y.shape[2], y.shape[3])

    ops = types.ModuleType("models.custom_ops")
    ops.fused_leaky_relu, ops.FusedLeakyReLU, ops.upfirdn2d = fused_leaky_relu, FusedLeakyReLU, upfirdn2d
    sys.modules["models.custom_ops"] = ops

    dataset = types.ModuleType("dataset")
    dataset.DictTensor = type("DictTensor", (dict,), {})
    sys.modules["dataset"] = dataset

    losses = types.ModuleType("models.losses")

    def calc_path_lengths(*args, **kwargs):
        raise RuntimeError("path lengths are a training loss: not part of this benchmark")

    losses.calc_path_lengths = calc_path_lengths
    sys.modules["models.losses"] = losses


def load_original(repo, config_path):
    try:
        import torch
    except ImportError:
        skip("PyTorch is not installed (Debian: apt install python3-torch)")
    if not repo or not os.path.isfile(os.path.join(repo, "models", "infinitygan_generator.py")):
        skip("no clone of github.com/hubert0527/infinityGAN: pass --original DIR or set "
             "INFINITYGAN_DIR")
    try:
        import yaml

        with open(config_path) as f:
            config = namespace(yaml.safe_load(f))
        install_stand_ins(torch)
        sys.path.insert(0, repo)
        from models.infinitygan_generator import InfinityGanGenerator

        # Its coordinate grid is built with .cuda(); on a machine without CUDA it stays put.
        cuda = torch.Tensor.cuda
        if not torch.cuda.is_available():
            torch.Tensor.cuda = lambda self, *a, **k: self
        try:
            generator = InfinityGanGenerator(config).eval()
        finally:
            torch.Tensor.cuda = cuda
    except Exception as e:  # any missing module or API drift: say so rather than fail
        skip(f"the original generator did not load: {type(e).__name__}: {e}")
    return torch, generator, config


def original_inputs(torch, config, seed):
    p = config.train_params
    side = p.ts_input_size + 2 * p.ss_n_layers * p.ss_unfold_radius
    g = torch.Generator().manual_seed(seed)
    # Shaped (batch, 2, dim) as its LatentSampler makes it, style mixing off: the structure
    # synthesizer reads [:, 0], so a (batch, dim) latent fails there.
    z = torch.randn(1, p.global_latent_dim, generator=g)
    return dict(global_latent=torch.stack([z, z], 1),
                local_latent=torch.randn(1, p.local_latent_dim, side, side, generator=g),
                disable_dual_latents=True)


def count_macs(torch, generator, inputs):
    """MACs of one forward pass's convolutions, FIR filters (one input and one output
    channel per group) left out, and the output image."""
    F = torch.nn.functional
    conv2d, conv_transpose2d = F.conv2d, F.conv_transpose2d
    total = [0]

    def counted_conv2d(x, w, *args, **kwargs):
        y = conv2d(x, w, *args, **kwargs)
        if tuple(w.shape[:2]) != (1, 1):
            total[0] += y.numel() * w.shape[1] * w.shape[2] * w.shape[3]
        return y

    def counted_conv_transpose2d(x, w, *args, **kwargs):
        if tuple(w.shape[:2]) != (1, 1):
            total[0] += x.numel() * w.shape[1] * w.shape[2] * w.shape[3]
        return conv_transpose2d(x, w, *args, **kwargs)

    F.conv2d, F.conv_transpose2d = counted_conv2d, counted_conv_transpose2d
    try:
        with torch.no_grad():
            image = generator(**inputs)["gen"]
    finally:
        F.conv2d, F.conv_transpose2d = conv2d, conv_transpose2d
    return total[0], image


def time_original(torch, generator, inputs, patches):
    times = []
    with torch.no_grad():
        for _ in range(patches):
            start = time.perf_counter()
            generator(**inputs)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def igan_bench(exe, config, tile, threads, repetitions):
    cmd = [exe, "--threads", str(threads), "bench", "--config", config, "--tile", str(tile),
           "--no-rss", "--repetitions", str(repetitions), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--original", default=os.environ.get("INFINITYGAN_DIR", ""),
                    help="clone of hubert0527/infinityGAN (default: $INFINITYGAN_DIR)")
    ap.add_argument("--original-config", default="",
                    help="its model YAML (default: <original>/configs/model/InfinityGAN.yaml)")
    ap.add_argument("--igan", default=os.path.join(here, "..", "build", "igan"))
    ap.add_argument("--config", default="paper", help="igan's config matching the YAML")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=3, help="alternations of the two")
    ap.add_argument("--patches", type=int, default=3, help="original forwards per round")
    ap.add_argument("--repetitions", type=int, default=3, help="igan bench runs per round")
    ap.add_argument("--tiles", default="101,256", help="igan tile sizes")
    ap.add_argument("--json", action="store_true", help="also print one JSON summary")
    args = ap.parse_args()

    config_path = args.original_config or os.path.join(
        args.original, "configs", "model", "InfinityGAN.yaml")
    torch, generator, config = load_original(args.original, config_path)
    if not os.access(args.igan, os.X_OK):
        skip(f"no igan binary at {args.igan} (build it, or pass --igan)")
    torch.set_num_threads(args.threads)
    inputs = original_inputs(torch, config, seed=0)
    macs, image = count_macs(torch, generator, inputs)  # also the warm-up
    patch = image.shape[-1] * image.shape[-2]
    tiles = [int(t) for t in args.tiles.split(",") if t]

    original_s, igan_s, igan_json = [], {t: [] for t in tiles}, {}
    for r in range(args.rounds):
        original_s.append(time_original(torch, generator, inputs, args.patches))
        for t in tiles:
            j = igan_bench(args.igan, args.config, t, args.threads, args.repetitions)
            igan_s[t].append(j["seconds_per_tile_median"])
            igan_json[t] = j
        print(f"round {r + 1}: original {original_s[-1]:.3f} s/patch, " +
              ", ".join(f"igan tile {t} {igan_s[t][-1]:.3f} s/tile" for t in tiles), flush=True)

    o_s = statistics.median(original_s)
    o_pps = patch / o_s
    summary = {"cpu": cpu_name(), "threads": args.threads, "torch": torch.__version__,
               "original": {"patch": list(image.shape[-2:]), "macs_per_pixel": macs / patch,
                            "seconds_per_patch": original_s, "pixels_per_s": o_pps},
               "igan": {}}
    print(f"\n{summary['cpu']}, {args.threads} threads; PyTorch {torch.__version__}")
    print(f"{'':24s} {'MACs/pixel':>11s} {'s per image':>12s} {'pixels/s':>10s} "
          f"{'x original/pixel':>17s} {'x original/MAC':>15s}")
    print(f"{'original, %dx%d patch' % tuple(image.shape[-2:]):24s} {macs / patch:11.4g} "
          f"{o_s:12.3f} {o_pps:10.0f}")
    for t in tiles:
        s = statistics.median(igan_s[t])
        mpp = igan_json[t]["macs_per_pixel"]
        pps = t * t / s
        per_pixel, per_mac = pps / o_pps, pps * mpp / (o_pps * macs / patch)
        print(f"{'igan, tile %d' % t:24s} {mpp:11.4g} {s:12.3f} {pps:10.0f} {per_pixel:17.2f} "
              f"{per_mac:15.2f}")
        summary["igan"][str(t)] = {"macs_per_pixel": mpp, "seconds_per_tile": igan_s[t],
                                   "pixels_per_s": pps, "ratio_per_pixel": per_pixel,
                                   "ratio_per_mac": per_mac,
                                   "workers": igan_json[t].get("workers"),
                                   "fraction_of_peak": igan_json[t].get("fraction_of_peak")}
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
