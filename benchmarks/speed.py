"""Inference speed: shipped models vs EDSR-baseline, backends, engine and tiling overhead.

Every table is measured interleaved (each round runs every cell once; a cell reports its best
round), so a busy machine slows all cells alike and the ratios stay meaningful.

    python benchmarks/speed.py                    # everything, CPU (+ CUDA when present)
    python benchmarks/speed.py --size 192 --rounds 2 --skip-e2e
    python benchmarks/speed.py --big              # also time the 4096^2 tiled run (minutes)
    python benchmarks/speed.py --cpu-time         # 1 thread, CPU time: stable on a busy machine

Tables:
1. models: MPix_out/s of each shipped model and EDSR-baseline (same bands and scale) with torch
   NCHW, torch channels-last and ONNX Runtime; MACs per output pixel; the time ratio
   sr-lite / EDSR-baseline per backend (target <= 0.30; the MACs ratio is 0.145).
2. channels-last speed-up per architecture (what ``SRModel.cpu_channels_last`` records).
3. end to end: ``upscale_array`` (profile, tiling, value rules, cast) on a 1024^2 uint16 4-band
   input vs the bare forward of the same network on the same pixels (target <= 1.10).
4. tiling at defaults: the tile chosen from the memory budget, the network work of the plan
   relative to one whole-image window (1024^2 and 4096^2), and the measured time ratio on 1024^2
   (tiled at defaults vs one window). Target <= 1.10.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from sr_domains.array_api import upscale_array
from sr_domains.inference import Upscaler
from sr_domains.memory import keep_freed_memory
from sr_domains.models import create_model
from sr_domains.models.ops import conv_macs
from sr_domains.pretrained import list_pretrained, load_pretrained


def _ort_runner(model: torch.nn.Module) -> Callable[[torch.Tensor], object] | None:
    try:
        from sr_domains.onnx_backend import OrtRunner
    except ImportError:
        return None
    try:
        runner = OrtRunner(model, torch.device("cpu"))  # type: ignore[arg-type]
    except ImportError:
        return None
    return lambda x: runner(x.numpy())


def _variants(model: torch.nn.Module, x: torch.Tensor) -> dict[str, Callable[[], object]]:
    nchw = model.to(memory_format=torch.contiguous_format)
    out: dict[str, Callable[[], object]] = {}
    out["torch NCHW"] = lambda: nchw(x)
    cl_model = _ClModel(model)
    xc = x.contiguous(memory_format=torch.channels_last)
    out["torch CL"] = lambda: cl_model(xc)
    ort = _ort_runner(model)
    if ort is not None:
        out["onnxruntime"] = lambda: ort(x)
    return out


class _ClModel:
    """Runs a channels-last copy (the NCHW original stays untouched)."""

    def __init__(self, model: torch.nn.Module) -> None:
        import copy

        self.model = copy.deepcopy(model).to(memory_format=torch.channels_last)

    def __call__(self, x: torch.Tensor) -> object:
        return self.model(x)


CLOCK: Callable[[], float] = time.perf_counter


def _interleaved(cells: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    best = dict.fromkeys(cells, float("inf"))
    with torch.inference_mode():
        for fn in cells.values():  # warm-up
            fn()
        for _ in range(rounds):
            for name, fn in cells.items():
                t0 = CLOCK()
                fn()
                best[name] = min(best[name], CLOCK() - t0)
    return best


def table_models(size: int, rounds: int) -> None:
    print(f"\n1. models: LR input {size}x{size}, batch 1, {torch.get_num_threads()} threads")
    entries = list_pretrained()
    models: dict[str, torch.nn.Module] = {}
    for e in entries:
        models[e.name] = load_pretrained(e.name)
        key = f"edsr-baseline {e.in_channels}b x{e.scale}"
        if key not in models:
            models[key] = create_model("edsr", in_channels=e.in_channels, scale=e.scale).eval()
    cells: dict[str, Callable[[], object]] = {}
    macs: dict[str, float] = {}
    for name, m in models.items():
        x = torch.rand(1, m.in_channels, size, size, generator=torch.Generator().manual_seed(0))
        macs[name] = conv_macs(m, (24, 24), m.scale)
        for variant, fn in _variants(m, x).items():
            cells[f"{name}|{variant}"] = fn
    best = _interleaved(cells, rounds)
    variants = sorted(
        {k.split("|")[1] for k in cells}, key=["torch NCHW", "torch CL", "onnxruntime"].index
    )
    head = f"{'model':<26} {'MACs/px':>9} " + " ".join(f"{v + ' MP/s':>17}" for v in variants)
    print(head)
    print("-" * len(head))
    for name, m in models.items():
        mpix = size * size * m.scale**2 / 1e6
        row = f"{name:<26} {macs[name] / 1e3:>8.1f}k "
        row += " ".join(f"{mpix / best[f'{name}|{v}']:>17.3f}" for v in variants)
        print(row)
    print("\ntime ratio sr-lite / EDSR-baseline (same bands and scale; target <= 0.30)")
    for e in entries:
        ref = f"edsr-baseline {e.in_channels}b x{e.scale}"
        ratios = [f"{v} {best[f'{e.name}|{v}'] / best[f'{ref}|{v}']:.3f}" for v in variants]
        best_lite = min(best[f"{e.name}|{v}"] for v in variants)
        best_ref = min(best[f"{ref}|{v}"] for v in variants)
        print(
            f"  {e.name:<18} MACs {macs[e.name] / macs[ref]:.3f}  time: {', '.join(ratios)}; "
            f"best vs best {best_lite / best_ref:.3f}"
        )


def table_channels_last(size: int, rounds: int) -> None:
    print(f"\n2. channels-last speed-up per architecture (3 bands, x2, {size}x{size})")
    cells: dict[str, Callable[[], object]] = {}
    archs = ["srcnn", "edsr", "edsr-lite-ca", "rcan-small", "rrdb-small"]
    for arch in archs:
        m = create_model(arch, in_channels=3, scale=2).eval()
        x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
        v = _variants(m, x)
        cells[f"{arch}|nchw"] = v["torch NCHW"]
        cells[f"{arch}|cl"] = v["torch CL"]
    best = _interleaved(cells, rounds)
    for arch in archs:
        nchw, cl = best[f"{arch}|nchw"], best[f"{arch}|cl"]
        print(f"  {arch:<14} NCHW {nchw * 1e3:8.1f} ms  CL {cl * 1e3:8.1f} ms  x{nchw / cl:.2f}")


def table_end_to_end(size: int, rounds: int) -> None:
    print(f"\n3. end to end: upscale_array on a {size}x{size} uint16 4-band input vs bare forward")
    x = np.random.default_rng(0).integers(0, 10000, (4, size, size)).astype(np.uint16)
    cases = {
        "sr-lite-gray-x2 (shipped, band by band)": load_pretrained("sr-lite-gray-x2"),
        "edsr-lite-ca 4 bands (random weights)": create_model("edsr-lite-ca", in_channels=4),
    }
    cells: dict[str, Callable[[], object]] = {}
    info = {}
    for name, model in cases.items():
        up = Upscaler(model.eval(), device="cpu")  # what upscale_array builds: format, tile
        fmt = torch.channels_last if up.channels_last else torch.contiguous_format
        t = torch.from_numpy(x.astype(np.float32) / 65535.0)[None]
        if model.in_channels == 1:  # one forward per band, as the engine does
            bands = [t[:, i : i + 1].contiguous(memory_format=fmt) for i in range(4)]
            cells[f"{name}|bare"] = lambda up=up, bands=bands: [up.model(b) for b in bands]
        else:
            t4 = t.contiguous(memory_format=fmt)
            cells[f"{name}|bare"] = lambda up=up, t4=t4: up.model(t4)
        cells[f"{name}|e2e"] = lambda model=model: upscale_array(x, model, device="cpu")
        info[name] = (up.tiling.tile, up.plan((size, size)).n_windows)
    best = _interleaved(cells, rounds)
    for name in cases:
        bare, e2e = best[f"{name}|bare"], best[f"{name}|e2e"]
        tile, n = info[name]
        print(
            f"  {name:<40} tile {tile} ({n} window), bare {bare:.2f} s, "
            f"upscale_array {e2e:.2f} s, ratio {e2e / bare:.3f} (target <= 1.10)"
        )


def table_tiling(rounds: int, big: bool) -> None:
    print("\n4. tiling at default settings (edsr-lite-ca, 3 bands)")
    for scale in (2, 4):
        model = create_model("edsr-lite-ca", in_channels=3, scale=scale).eval()
        up = Upscaler(model, device="cpu")
        budget = up.memory_budget / 2**30 if up.memory_budget else float("nan")
        for size in (1024, 4096):
            plan = up.plan((size, size))
            work = len(plan.ys) * len(plan.xs) * plan.tile[0] * plan.tile[1] / size**2
            print(
                f"  x{scale} {size}^2: budget {budget:.1f} GiB, tile {up.tiling.tile}, "
                f"{plan.n_windows} window(s) of {plan.tile[0]}x{plan.tile[1]}, "
                f"network work / whole image {work:.3f}"
            )
    size = 1024
    model = create_model("edsr-lite-ca", in_channels=3, scale=2).eval()
    x = np.random.default_rng(1).random((3, size, size), dtype=np.float32)
    small = Upscaler(model, device="cpu", tile=512)
    default = Upscaler(model, device="cpu")
    whole = Upscaler(model, device="cpu", tile=size)
    from sr_domains.intensity import profile_from_any

    prof = profile_from_any("identity")
    cells = {
        "whole": lambda: whole.upscale(x, profile=prof),
        "default": lambda: default.upscale(x, profile=prof),
        "tile 512": lambda: small.upscale(x, profile=prof),
    }
    best = _interleaved(cells, rounds)
    print(
        f"  measured on {size}^2 x2: default tile / whole {best['default'] / best['whole']:.3f}, "
        f"tile 512 / whole {best['tile 512'] / best['whole']:.3f} (target <= 1.10 at defaults)"
    )
    if big:
        x4 = np.random.default_rng(2).random((3, 4096, 4096), dtype=np.float32)
        t0 = CLOCK()
        default.upscale(x4, profile=prof)
        spent = CLOCK() - t0
        per_px = best["whole"] / size**2
        print(
            f"  4096^2 x2 at defaults: {spent:.1f} s, "
            f"{spent / (per_px * 4096**2):.3f} x the 1024^2 whole-image rate"
        )


def table_gpu() -> None:
    if not torch.cuda.is_available():
        print("\n5. GPU: no CUDA device here; run this script on a GPU machine for that table")
        return
    print(f"\n5. GPU ({torch.cuda.get_device_name()}): MPix_out/s, 1024^2 LR, batch 4")
    print("  cells: autocast dtype | memory format [| torch.compile]")
    for name in [e.name for e in list_pretrained()] + ["edsr"]:
        m = load_pretrained(name) if name != "edsr" else create_model("edsr", in_channels=3)
        m = m.cuda().eval()
        x = torch.rand(4, m.in_channels, 1024, 1024, device="cuda")
        cells: dict[str, Callable[[], object]] = {}
        for amp in (None, torch.bfloat16, torch.float16):
            for cl in (False, True):
                mm = m.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
                xx = x.contiguous(
                    memory_format=torch.channels_last if cl else torch.contiguous_format
                )

                def run(mm=mm, xx=xx, amp=amp) -> object:
                    with torch.autocast("cuda", dtype=amp, enabled=amp is not None):
                        y = mm(xx)
                    torch.cuda.synchronize()
                    return y

                cells[f"{amp}|{'CL' if cl else 'NCHW'}"] = run
        try:  # torch.compile (inductor) on the channels-last bf16 model
            compiled = torch.compile(m.to(memory_format=torch.channels_last))
            xc = x.contiguous(memory_format=torch.channels_last)

            def run_compiled(compiled=compiled, xc=xc) -> object:
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    y = compiled(xc)
                torch.cuda.synchronize()
                return y

            run_compiled()  # compile outside the timed rounds
            cells["bf16|CL|compile"] = run_compiled
        except Exception as exc:  # report, do not stop the table
            print(f"  {name}: torch.compile failed: {str(exc).splitlines()[0]}")
        best = _interleaved(cells, 3)
        mpix = 4 * 1024 * 1024 * m.scale**2 / 1e6
        print(f"  {name:<18} " + "  ".join(f"{k} {mpix / v:.0f}" for k, v in best.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="LR side for tables 1 and 2")
    ap.add_argument("--e2e-size", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--skip-models", action="store_true")
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--skip-tiling", action="store_true")
    ap.add_argument("--big", action="store_true", help="also run 4096^2 at defaults (slow)")
    ap.add_argument(
        "--cpu-time",
        action="store_true",
        help="one thread, timed by its CPU time (stable on a shared, busy machine)",
    )
    ap.add_argument(
        "--default-malloc",
        action="store_true",
        help="do not call keep_freed_memory() (the CLI does; see sr_domains.memory)",
    )
    args = ap.parse_args()
    heap = False if args.default_malloc else keep_freed_memory()
    global CLOCK
    if args.cpu_time:
        args.threads, CLOCK = 1, time.thread_time
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = "thread CPU time" if args.cpu_time else "wall clock"
    malloc = "freed memory kept in the heap" if heap else "default malloc"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {clock}, {malloc}")
    if not args.skip_models:
        table_models(args.size, args.rounds)
        table_channels_last(args.size // 2, args.rounds)
    if not args.skip_e2e:
        table_end_to_end(args.e2e_size, args.rounds)
    if not args.skip_tiling:
        table_tiling(args.rounds, args.big)
    table_gpu()


if __name__ == "__main__":
    main()
