"""Through-plane SR benchmark: thick slices simulated from a real 1 mm brain, made isotropic
again by cubic interpolation, today's ``--through-plane``, ``make_isotropic`` (header and
estimated slice profile) and ECLARE, scored against the truth.

Truth: the MNI152 (2009a, 1 mm, 197 x 233 x 189) T1 template that nilearn ships inside its
package (no download). Thick slices along the inferior-superior axis are simulated with the
documented slice-profile formula (``sr_domains.medical.slice_profile``), written as NIfTI
(the LR affine follows the voxel-centre rule, so a 1 mm reconstruction lands on the truth grid)
and every method runs in its own subprocess on that file (wall time, CPU time, peak RSS).
Scores: PSNR and SSIM inside the MNI brain mask, data range = the truth's 0.5-99.5 percentile
range inside the mask.

Needs its own environment (ECLARE is GPL and pins scipy; neither it nor nilearn is a dependency
of sr_domains)::

    bash benchmarks/through_plane_setup.sh
    PY=benchmarks/.venv-through-plane/bin/python
    $PY benchmarks/through_plane.py                                   # every case and method
    $PY benchmarks/through_plane.py --cases g4 --methods cubic,iso_header --timing
    $PY benchmarks/through_plane.py --report                          # the table of a past run

Cases: ``g2 g4 g6`` Gaussian profiles of FWHM = spacing 2/4/6 mm, ``r2 r4 r6`` rect (slab)
profiles, ``gap`` 3 mm slabs every 4 mm. Also ``--timing``: a 256 x 256 x 40 volume of
0.9 x 0.9 x 4.5 mm made isotropic with the default budget (the <= 10 minute criterion).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CASES = {  # name: (profile kind, thickness mm, spacing mm)
    "g2": ("gaussian", 2.0, 2.0),
    "g4": ("gaussian", 4.0, 4.0),
    "g6": ("gaussian", 6.0, 6.0),
    "r2": ("rect", 2.0, 2.0),
    "r4": ("rect", 4.0, 4.0),
    "r6": ("rect", 6.0, 6.0),
    "gap": ("rect", 3.0, 4.0),
}
METHODS = ("cubic", "through_plane", "iso_header", "iso_estimate", "eclare")

CHILD = r"""
import json, sys, time, resource
import torch
torch.set_num_threads(int(sys.argv[1]))
task = json.loads(sys.argv[2])
t0 = time.perf_counter()
extra = {}
if task["method"] == "through_plane":
    from sr_domains.medical import upscale_nifti
    upscale_nifti(task["src"], task["dst"], scale=task["scale"], through_plane=True,
                  overwrite=True)
elif task["method"].startswith("iso"):
    from sr_domains.medical import make_isotropic
    make_isotropic(task["src"], task["dst"], slice_profile=task["profile"],
                   slice_thickness=task.get("thickness"), budget_minutes=task["budget"],
                   seed=0, overwrite=True, save_model=task.get("model"), progress=False)
    import nibabel as nib
    ext = nib.load(task["dst"]).header.extensions[-1].get_content()
    extra = json.loads(ext)
    if task.get("fba"):  # the same fitted model, fused by Fourier burst accumulation
        make_isotropic(task["src"], task["fba"], weights=task["model"], budget_minutes=0,
                       fusion="fba", overwrite=True)
hwm = 0.0  # this process's own peak RSS (ru_maxrss would include the parent's at fork)
with open("/proc/self/status") as f:
    for line in f:
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024.0
print("RESULT " + json.dumps({"seconds": time.perf_counter() - t0, "extra": extra,
                              "rss_mb": hwm}))
"""


def peak_rss_child(args: list[str]) -> dict:
    """Run ``args``; wall, CPU and the child's own peak RSS (``wait4``)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        proc = subprocess.Popen(args, stdout=fo, stderr=fe)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read().decode(errors="replace"), fe.read().decode(errors="replace")
    rc = os.waitstatus_to_exitcode(status)
    return {
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "rss_mb": None,  # ru_maxrss includes the parent's RSS at fork: children report VmHWM
        "rc": rc,
        "stdout": out,
        "stderr": err[-4000:],
    }


def load_truth() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The MNI152 1 mm T1 template, its brain mask and affine (shipped inside nilearn)."""
    from nilearn.datasets import load_mni152_brain_mask, load_mni152_template

    t = load_mni152_template(resolution=1)
    m = load_mni152_brain_mask(resolution=1)
    truth = np.asarray(t.get_fdata(), np.float32)
    mask = np.asarray(m.get_fdata()) > 0.5
    return truth, mask, np.asarray(t.affine, np.float64)


def simulate(truth: np.ndarray, affine: np.ndarray, kind: str, thick: float, spacing: float):
    """Thick slices along axis 2 (documented formula) and their voxel-centre affine."""
    from sr_domains.image import scale_nifti_affine
    from sr_domains.medical.slice_profile import SliceProfile, degradation_matrix

    w = degradation_matrix(truth.shape[2], 1.0, spacing, SliceProfile(kind, thick))
    lr = np.einsum("xyz,jz->xyj", truth, w).astype(np.float32)
    return lr, scale_nifti_affine(affine, (1.0, 1.0, 1.0 / spacing))


def score(x: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict:
    from skimage.metrics import structural_similarity

    m = min(x.shape[2], truth.shape[2])
    x, t, k = x[..., :m].astype(np.float64), truth[..., :m].astype(np.float64), mask[..., :m]
    lo, hi = np.percentile(truth[mask], [0.5, 99.5])
    rng = float(hi - lo)
    mse = float(np.mean((x[k] - t[k]) ** 2))
    _, smap = structural_similarity(t, x, data_range=rng, full=True)
    return {"psnr": 10 * np.log10(rng**2 / mse), "ssim": float(smap[k].mean())}


def cubic(lr: np.ndarray, spacing: float, n_out: int) -> np.ndarray:
    from sr_domains._resample import cubic_contributions

    idx, w = cubic_contributions(lr.shape[2], n_out, spacing, False)
    return np.einsum("xyjp,jp->xyj", lr[:, :, idx], w).astype(np.float32)


def save(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    import nibabel as nib

    img = nib.Nifti1Image(data.astype(np.float32), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, path)
    return path


def run_ours(task: dict, threads: int) -> dict:
    r = peak_rss_child([sys.executable, "-c", CHILD, str(threads), json.dumps(task)])
    if r["rc"] != 0:
        return {**r, "error": (r["stderr"].strip().splitlines() or ["failed"])[-1]}
    line = next(x for x in r["stdout"].splitlines() if x.startswith("RESULT "))
    return {**r, **json.loads(line[7:])}  # its own VmHWM replaces wait4's inherited maxrss


def eclare_probe(src: Path, thick: float, kind: str, work: Path, threads: int) -> dict:
    """ECLARE on CPU: time a few training steps and the inference of a few planes, then
    extrapolate to the whole volume (its full run does not fit the budget here, see docs)."""
    code = r"""
import sys, time, json, torch, numpy as np
torch.set_num_threads(int(sys.argv[1]))
from eclare.utils.parse_image_file import parse_image
from eclare.utils.train_set import TrainSet
from eclare.utils.blur_kernel_ops import parse_kernel
from eclare.models.wdsr import WDSR
src, thick, kind = sys.argv[2], float(sys.argv[3]), sys.argv[4]
steps, planes = int(sys.argv[5]), int(sys.argv[6])
image, sep, scales, lr_axis, header, affine, lo, hi = parse_image(src, normalize_image=True)
ds = TrainSet(image=image, lr_axis=lr_axis, verbose=False)
kernel = parse_kernel(None, kind, thick)
model = WDSR(n_resblocks=16, num_channels=256, scale=sep)
p = 8; p2 = round(sep * max(model.calc_out_patch_size([p, p])))
ds.init_eclare((p2, p), kernel, sep, steps * 128)
opt = torch.optim.Adam(model.parameters(), lr=1e-4)
loader = torch.utils.data.DataLoader(ds, batch_size=128, shuffle=False, num_workers=0)
t0 = time.process_time(); w0 = time.perf_counter()
for lr_p, hr_p in loader:
    loss = torch.nn.functional.mse_loss(model(lr_p), hr_p)
    opt.zero_grad()
    loss.backward()
    opt.step()
train_cpu, train_wall = time.process_time() - t0, time.perf_counter() - w0
vol = torch.from_numpy(image).permute(0, 2, 1)[:, None]  # (x, 1, z, y): one stack of planes
t0 = time.process_time(); w0 = time.perf_counter()
with torch.inference_mode():
    for i in range(planes):
        model(vol[i:i + 1])
inf_cpu, inf_wall = time.process_time() - t0, time.perf_counter() - w0
n_planes = image.shape[0] + image.shape[1]
print("RESULT " + json.dumps({"step_cpu": train_cpu / steps, "step_wall": train_wall / steps,
    "plane_cpu": inf_cpu / planes, "plane_wall": inf_wall / planes, "n_planes": n_planes,
    "default_steps": 1000000 // 128}))
"""
    r = peak_rss_child(
        [
            sys.executable,
            "-c",
            code,
            str(threads),
            str(src),
            str(thick),
            "boxcar" if kind == "rect" else "gaussian",
            "3",
            "3",
        ]
    )
    if r["rc"] != 0:
        return {"error": (r["stderr"].strip().splitlines() or ["failed"])[-1]}
    line = next(x for x in r["stdout"].splitlines() if x.startswith("RESULT "))
    return json.loads(line[7:])


def timing_case(work: Path, threads: int, budget: float) -> dict:
    """256 x 256 x 40 at 0.9 x 0.9 x 4.5 mm (a brain-sized phantom) with the default budget."""
    from sr_domains.testing.medical import make_nifti

    src = make_nifti(
        work / "t2_256.nii.gz",
        shape=(256, 256, 40),
        spacing=(0.9, 0.9, 4.5),
        oblique=True,
        dtype="int16",
    )
    task = {
        "method": "iso_header",
        "src": str(src),
        "dst": str(work / "t2_256_iso.nii.gz"),
        "profile": "gaussian",
        "budget": budget,
    }
    return run_ours(task, threads)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--budget", type=float, default=None, help="minutes (default: the library's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timing", action="store_true", help="also the 256x256x40 timing case")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "through_plane")
    ap.add_argument("--report", action="store_true", help="only print the table of --out")
    args = ap.parse_args()
    if args.report:
        rows = [json.loads(x) for x in (args.out / "results.jsonl").read_text().splitlines() if x]
        print_table(rows, 0.0)
        return 0
    from sr_domains.options import DEFAULT_BUDGET_MINUTES

    budget = DEFAULT_BUDGET_MINUTES if args.budget is None else args.budget
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    truth, mask, affine = load_truth()
    print(
        f"truth: MNI152 T1 1 mm {truth.shape}, brain mask {int(mask.sum())} voxels; "
        f"budget {budget:g} min, {args.threads} threads",
        flush=True,
    )
    methods = [m for m in args.methods.split(",") if m]
    rows = []
    for case in [c for c in args.cases.split(",") if c]:
        kind, thick, spacing = CASES[case]
        lr, lr_aff = simulate(truth, affine, kind, thick, spacing)
        src = save(args.out / f"{case}_lr.nii.gz", lr, lr_aff)
        n_out = int(np.floor(lr.shape[2] * spacing + 0.5))
        for method in methods:
            row = {
                "case": case,
                "profile": f"{kind} {thick:g} mm / {spacing:g} mm",
                "method": method,
            }
            dst = args.out / f"{case}_{method}.nii.gz"
            if method == "cubic":
                t0 = time.perf_counter()
                out = cubic(lr, spacing, n_out)
                row.update(wall_s=time.perf_counter() - t0, cpu_s=None, rss_mb=None)
            elif method == "through_plane":
                s = round(spacing)
                if s not in (2, 3, 4) or abs(s - spacing) > 1e-9:
                    row["error"] = f"x{spacing:g} is not a supported --scale (2, 3, 4)"
                    rows.append(row)
                    continue
                r = run_ours(
                    {"method": method, "src": str(src), "dst": str(dst), "scale": s}, args.threads
                )
                row.update({k: r.get(k) for k in ("wall_s", "cpu_s", "rss_mb", "error")})
                if "error" in r:
                    rows.append(row)
                    continue
                import nibabel as nib

                full = np.asarray(nib.load(dst).dataobj, np.float32)  # s^3 finer grid
                x, y, z = full.shape  # back to 1 mm in-plane: mean of s x s blocks
                out = full.reshape(x // s, s, y // s, s, z).mean(axis=(1, 3))
            elif method.startswith("iso"):
                est = method == "iso_estimate"
                task = {
                    "method": method,
                    "src": str(src),
                    "dst": str(dst),
                    "profile": "estimate" if est else kind,
                    "thickness": None if est else thick,
                    "budget": budget,
                }
                if case == "g4" and not est:
                    task["model"] = str(args.out / f"{case}_model.safetensors")
                    task["fba"] = str(args.out / f"{case}_{method}_fba.nii.gz")
                r = run_ours(task, args.threads)
                row.update({k: r.get(k) for k in ("wall_s", "cpu_s", "rss_mb", "error")})
                if "error" in r:
                    rows.append(row)
                    continue
                ex = r["extra"]
                row["steps"] = ex.get("training", {}).get("steps")
                row["fwhm_mm"] = ex.get("slice_profile", {}).get("fwhm_mm")
                row["train_s"] = ex.get("training", {}).get("seconds")
                import nibabel as nib

                out = np.asarray(nib.load(dst).dataobj, np.float32)
                if task.get("fba"):
                    fba = np.asarray(nib.load(task["fba"]).dataobj, np.float32)
                    row["fba"] = score(fba, truth, mask)
            elif method == "eclare":
                probe = eclare_probe(src, thick / 1.0, kind, args.out, args.threads)
                row["eclare_probe"] = probe
                rows.append(row)
                _log(results, row)
                continue
            else:
                raise SystemExit(f"unknown method {method}")
            row.update(score(out, truth, mask))
            rows.append(row)
            _log(results, row)
    if args.timing:
        with tempfile.TemporaryDirectory(dir=args.out) as tmp:
            r = timing_case(Path(tmp), args.threads, budget)
        row = {
            "case": "timing 256x256x40 0.9x0.9x4.5 mm",
            "method": "iso_header",
            **{k: r.get(k) for k in ("wall_s", "cpu_s", "rss_mb", "error")},
            "steps": r.get("extra", {}).get("training", {}).get("steps"),
            "train_s": r.get("extra", {}).get("training", {}).get("seconds"),
        }
        rows.append(row)
        _log(results, row)
    print_table(rows, budget)
    return 0


def _log(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def _fmt(v: object, spec: str) -> str:
    return "" if v is None else format(v, spec)


def print_table(rows: list[dict], budget: float) -> None:
    print("\n| case | method | PSNR dB | SSIM | wall s | CPU s | peak RSS MB | notes |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        note = r.get("error") or ""
        if r.get("fwhm_mm") is not None:
            note = f"FWHM {r['fwhm_mm']:.3g} mm, {r.get('steps')} steps"
        if r.get("fba"):
            note += f"; fba fusion {r['fba']['psnr']:.2f} dB / {r['fba']['ssim']:.4f}"
        if r.get("eclare_probe"):
            p = r["eclare_probe"]
            if "error" in p:
                note = f"ECLARE failed: {p['error']}"
            else:
                inf = p["plane_cpu"] * p["n_planes"] / 60
                note = (
                    f"not run to completion: {p['step_cpu']:.1f} CPU s/step, inference "
                    f"{p['plane_cpu']:.1f} CPU s/plane x {p['n_planes']} = {inf:.0f} CPU min"
                )
        cells = [
            r["case"],
            r["method"],
            _fmt(r.get("psnr"), ".2f"),
            _fmt(r.get("ssim"), ".4f"),
            _fmt(r.get("wall_s"), ".0f"),
            _fmt(r.get("cpu_s"), ".0f"),
            _fmt(r.get("rss_mb"), ".0f"),
            note,
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
