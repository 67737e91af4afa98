"""Value rules per volume of a 4-D NIfTI file: a magnitude volume (non-negative, exact-zero
background) beside a phase volume (-pi..pi) keeps the rules it gets when saved alone as a
3-D file, and the phase volume keeps its negative values.

Real nibabel files with an oblique affine, the shipped ``sr-lite-gray-x2`` network. The
intensity profile is fitted once per file (an invertible linear map), so a 4-D file and a
volume of it saved alone are normalised differently and their outputs differ by the
network's response to that. Where the outputs are compared voxel for voxel, both runs get
the same fixed profile: then a volume's output equals its 3-D run's byte for byte, which
holds only if it got the same rules (domain, pinned zeros and their tolerance) and went
through the same planes in the same chunks. With the default (fitted) profile the rules'
effects are checked instead: non-negative output and exact zeros over the footprint of the
input's zeros.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from sr_domains.intensity import IntensityProfile  # noqa: E402
from sr_domains.medical import upscale_nifti  # noqa: E402
from sr_domains.pretrained import load_pretrained  # noqa: E402
from sr_domains.testing.phantoms import oblique_affine  # noqa: E402
from sr_domains.value_domain import ValueOptions  # noqa: E402

AFFINE = oblique_affine((1.2, 1.2, 3.0))
FIXED = IntensityProfile("fixed", (1 / 160.0,), (0.0,))  # one normalisation for every run
NO_ENVELOPE = ValueOptions(envelope=None)  # the physical domain alone keeps it non-negative
SHAPE = (20, 16, 6)  # (6 slices: a 4-D file's two volumes fit in one 16-plane chunk)
THREE_D_KEYS = {"envelope", "domain", "pinned", "pin_tolerance", "clamped", "clipped_to_dtype"}


@pytest.fixture(scope="module")
def net():
    return load_pretrained("sr-lite-gray-x2")


def magnitude(shape=SHAPE, seed=0, gain=1.0):
    """Tissue (a checkered ellipse with noise, 100..170) in an exact-zero background."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    a, b = 0.35 * shape[0], 0.3 * shape[1]
    inside = ((x - shape[0] / 2) / a) ** 2 + ((y - shape[1] / 2) / b) ** 2 < 1
    out = np.zeros(shape, np.float32)
    for z in range(shape[2]):
        checker = 60.0 * ((x // 3 + y // 3 + z) % 2)
        out[..., z] = np.where(inside, 100 + checker + rng.normal(0, 5, inside.shape), 0)
    return (out * gain).astype(np.float32)


def phase(shape=SHAPE, seed=1):
    """A wrapped phase map in -pi..pi: no zero background, half of it negative."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    ramp = 0.35 * x - 0.2 * y + 0.5 * z + rng.normal(0, 0.05, shape)
    return (np.angle(np.exp(1j * ramp))).astype(np.float32)


def save(path, data):
    nib.save(nib.Nifti1Image(data, AFFINE), path)
    return path


def run(src, dst, net, **kw):
    upscale_nifti(src, dst, model=net, device="cpu", **kw)
    img = nib.load(dst)
    return np.asarray(img.dataobj), provenance(img)


def provenance(img):
    (ext,) = [e for e in img.header.extensions if e.get_code() == 6]
    return json.loads(ext.get_content())


def zero_footprint(vol, factors=(2, 2, 1)):
    """Output voxels whose input voxel is an exact zero."""
    mask = vol == 0
    for a, f in enumerate(factors):
        mask = np.repeat(mask, f, axis=a)
    return mask


def alone(tmp_path, net, vol, name, **kw):
    """The output and provenance ``values`` of ``vol`` saved alone as a 3-D file."""
    out, prov = run(
        save(tmp_path / f"{name}.nii.gz", vol), tmp_path / f"{name}_o.nii.gz", net, **kw
    )
    return out, prov["values"]


def volume_list(listed):
    """``[0, "2-4"]`` -> ``[0, 2, 3, 4]``."""
    out = []
    for item in listed:
        a, _, b = str(item).partition("-")
        out += range(int(a), int(b or a) + 1)
    return out


def rules_of(values, v):
    """The rules recorded for volume ``v`` (4-D ``per_volume`` entry, or the 3-D record)."""
    if "per_volume" not in values:
        return {k: values[k] for k in ("domain", "pinned", "pin_tolerance")}
    (entry,) = [e for e in values["per_volume"] if v in volume_list(e["volumes"])]
    tol = entry["pin_tolerance"]  # (one number, or one per volume of the entry)
    tol = tol[volume_list(entry["volumes"]).index(v)] if isinstance(tol, list) else tol
    return {"domain": entry["domain"], "pinned": entry["pinned"], "pin_tolerance": tol}


@pytest.mark.parametrize("values", [None, NO_ENVELOPE], ids=["default", "no-envelope"])
def test_magnitude_volume_keeps_its_rules_beside_a_phase_volume(tmp_path, net, values):
    mag = magnitude()
    src = save(tmp_path / "mp.nii.gz", np.stack([mag, phase()], -1))
    # the fitted (per-file) profile: the rules' effects
    out, _ = run(src, tmp_path / "fit.nii.gz", net, values=values)
    got = out[..., 0]
    assert got.min() >= 0
    foot = zero_footprint(mag)
    assert foot.sum() > 0 and foot[:4, :4].all()  # (a background corner, far from tissue)
    assert np.all(got[foot] == 0), np.abs(got[foot]).max()  # at the tissue's edge too
    # the same profile for both: the magnitude volume's output is its 3-D run's
    out, prov = run(src, tmp_path / "fix.nii.gz", net, values=values, profile=FIXED)
    ref, ref_values = alone(tmp_path, net, mag, "mag", values=values, profile=FIXED)
    assert np.array_equal(out[..., 0], ref)
    assert rules_of(prov["values"], 0) == rules_of(ref_values, 0)
    assert rules_of(ref_values, 0)["pinned"] == [0.0]
    assert rules_of(ref_values, 0)["domain"]["lo"] == [0.0]


def test_phase_volume_keeps_its_negative_values(tmp_path, net):
    # phase first: volume v is planes [v*Z, (v+1)*Z); 6 slices do not fill a 16-plane chunk
    mag, ph = magnitude(), phase()
    src = save(tmp_path / "pm.nii.gz", np.stack([ph, mag], -1))
    out, prov = run(src, tmp_path / "o.nii.gz", net, profile=FIXED, values=NO_ENVELOPE)
    assert out[..., 0].min() < -3.0 and out[..., 0].max() > 3.0  # not clamped at 0
    ref, ref_values = alone(tmp_path, net, ph, "ph", profile=FIXED, values=NO_ENVELOPE)
    assert np.array_equal(out[..., 0], ref)
    assert rules_of(prov["values"], 0) == rules_of(ref_values, 0)
    assert rules_of(prov["values"], 0)["domain"]["lo"] == [None]
    assert rules_of(prov["values"], 0)["pinned"] == []
    # ... while the magnitude volume after it is non-negative with exact zeros
    assert out[..., 1].min() >= 0
    assert np.all(out[..., 1][zero_footprint(mag)] == 0)
    ref, _ = alone(tmp_path, net, mag, "mag", profile=FIXED, values=NO_ENVELOPE)
    assert np.array_equal(out[..., 1], ref)
    # the clamp counts of the volumes add up
    per = prov["values"]["per_volume"]
    assert [e["volumes"] for e in per] == [[0], [1]]
    for key in ("envelope", "domain", "pinned", "pixels"):
        assert prov["values"]["clamped"][key] == sum(e["clamped"][key] for e in per)
    assert per[0]["clamped"]["pixels"] == 0  # (no rule is active for the phase volume)
    assert prov["values"]["clamped"]["pixels"] == out[..., 1].size


def test_volumes_of_one_domain_and_scale_keep_the_3d_record(tmp_path, net):
    """Two int16 echoes (non-negative, exact-zero background; integer data: no tolerance):
    the same rules for both, the 3-D layout of ``values`` with the counts summed, each
    volume as saved alone (a guard: this held before per-volume rules too)."""
    echoes = [np.round(magnitude(gain=g)).astype(np.int16) for g in (8.0, 5.0)]
    src = save(tmp_path / "e.nii.gz", np.stack(echoes, -1))
    out, prov = run(src, tmp_path / "o.nii.gz", net, profile=FIXED)
    assert set(prov["values"]) == THREE_D_KEYS
    pixels = 0
    for v, echo in enumerate(echoes):
        ref, ref_values = alone(tmp_path, net, echo, f"e{v}", profile=FIXED)
        assert np.array_equal(out[..., v], ref)
        assert rules_of(prov["values"], v) == rules_of(ref_values, v)
        pixels += ref_values["clamped"]["pixels"]
    assert prov["values"]["clamped"]["pixels"] == pixels == out.size


def test_volumes_of_one_domain_keep_their_own_zero_tolerance(tmp_path, net):
    """Both volumes non-negative with an exact-zero background, at scales far apart (an
    apparent diffusion coefficient map in mm2/s, 5e-4..8.5e-4, beside a b0 image,
    2000..3400): the small one's tissue is no round-off residue of the large one's magnitude
    (held at its input values, as a zero background is, under a whole-file tolerance of
    ~8e-4); each volume is upscaled as if saved alone."""
    small, large = magnitude(gain=5e-6), magnitude(seed=3, gain=20.0)
    src = save(tmp_path / "s.nii.gz", np.stack([small, large], -1))
    prof = IntensityProfile("fixed", (1 / 8e-4,), (0.0,))
    out, prov = run(src, tmp_path / "o.nii.gz", net, profile=prof)
    ref, ref_values = alone(tmp_path, net, small, "small", profile=prof)
    assert np.array_equal(out[..., 0], ref)
    assert rules_of(prov["values"], 0) == rules_of(ref_values, 0)
    assert rules_of(prov["values"], 0)["pin_tolerance"] < 1e-8  # (of 8.5e-4 at most)


def test_non_streaming_path_applies_each_volumes_rules(tmp_path, net):
    """In-plane axes (0, 2) (whole volumes in memory, ``upscale_image``), a 5-D file whose
    volumes are numbered in file order (the 4th axis fastest): the phase volume is (t=1, e=0),
    file volume 1."""
    shape = (16, 12, 4)
    mags = [magnitude(shape, seed=s) for s in (0, 4, 5)]
    ph = phase(shape)
    data = np.stack([np.stack([mags[0], ph], -1), np.stack(mags[1:], -1)], -1)  # (.., t, e)
    assert data.shape == (*shape, 2, 2)
    src = save(tmp_path / "f5.nii.gz", data)
    kw = {"profile": FIXED, "values": NO_ENVELOPE, "axes": (0, 2)}
    out, prov = run(src, tmp_path / "o.nii.gz", net, **kw)
    assert out.shape == (32, 12, 8, 2, 2)
    for (t, e), vol, v in (((0, 0), mags[0], 0), ((0, 1), mags[1], 2), ((1, 1), mags[2], 3)):
        got = out[..., t, e]
        assert got.min() >= 0
        assert np.all(got[zero_footprint(vol, (2, 1, 2))] == 0)
        assert rules_of(prov["values"], v)["pinned"] == [0.0]
    ref, ref_values = alone(tmp_path, net, mags[0], "m0", **kw)
    assert np.array_equal(out[..., 0, 0], ref)
    assert rules_of(prov["values"], 0) == rules_of(ref_values, 0)
    got = out[..., 1, 0]  # the phase volume: negative values kept
    assert got.min() < -3.0
    assert rules_of(prov["values"], 1)["domain"]["lo"] == [None]
    ref, _ = alone(tmp_path, net, ph, "ph", **kw)
    assert np.array_equal(got, ref)


def test_isotropic_runs_apply_each_volumes_rules_too(tmp_path):
    """``make_isotropic`` of a magnitude + phase file: the magnitude volume non-negative,
    the phase volume signed, each volume's rules recorded (it used the file's for both)."""
    import torch

    from sr_domains.medical import make_isotropic

    mag, ph = magnitude(), phase()
    src = save(tmp_path / "mp.nii.gz", np.stack([mag, ph], -1))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # (small volumes, many small passes)
    try:
        (dst,) = make_isotropic(src, tmp_path / "iso.nii.gz", steps=2, values=NO_ENVELOPE)
    finally:
        torch.set_num_threads(threads)
    img = nib.load(dst)
    out = np.asarray(img.dataobj)
    assert out[..., 0].min() >= 0 and out[..., 1].min() < -3.0
    values = provenance(img)["values"]
    assert rules_of(values, 0)["domain"]["lo"] == [0.0] and rules_of(values, 0)["pinned"] == [0.0]
    assert rules_of(values, 1)["domain"]["lo"] == [None] and rules_of(values, 1)["pinned"] == []


def test_a_float_time_series_is_one_compact_record(tmp_path, net):
    """Float volumes of one domain each get their own zero tolerance; the record stays one
    entry (the tolerances listed by volume), not one entry per volume."""
    vols = [magnitude(seed=s, gain=1.0 + 0.1 * s) for s in range(5)]
    src = save(tmp_path / "ts.nii.gz", np.stack(vols, -1))
    _, prov = run(src, tmp_path / "o.nii.gz", net)
    values = prov["values"]
    if "per_volume" in values:  # (tolerances differ: one entry, listed)
        (entry,) = values["per_volume"]
        assert entry["volumes"] == ["0-4"] and len(entry["pin_tolerance"]) == 5
    assert all(rules_of(values, v)["pinned"] == [0.0] for v in range(5))


@pytest.mark.parametrize("kind", ["float", "int16"])
def test_a_long_series_fits_its_header(tmp_path, net, kind):
    """120 volumes whose rules differ: the record overflowed the header's fixed placeholder
    and the run failed after all its work, writing nothing (a float series: one tolerance per
    volume; int16: volumes alternating non-negative and signed, listed one by one)."""
    shape = (8, 8, 2)
    base = magnitude(shape)
    if kind == "float":
        vols = [base * (1 + 0.05 * v) for v in range(120)]
    else:
        vols = [(base if v % 2 else base - 50).astype(np.int16) for v in range(120)]
    src = save(tmp_path / "long.nii.gz", np.stack(vols, -1))
    out, prov = run(src, tmp_path / "o.nii.gz", net)
    assert out.shape == (16, 16, 2, 120)
    values = prov["values"]
    entries = values.get("per_volume", [values])
    if kind == "int16":
        assert len(entries) == 2
        assert rules_of(values, 1)["domain"]["lo"] != rules_of(values, 0)["domain"]["lo"]


def test_isotropic_5d_volumes_stay_in_their_places(tmp_path):
    """Volume (t, e) of a 5-D file is output volume (t, e): the volumes were processed in C
    order (the last axis fastest) and written in file order, swapping (0, 1) and (1, 0)."""
    import torch

    from sr_domains.medical import make_isotropic

    shape = (16, 12, 4)
    base = magnitude(shape)
    data = np.zeros((*shape, 2, 2), np.float32)
    for t in range(2):
        for e in range(2):
            data[..., t, e] = base * (1 + t + 10 * e)
    src = save(tmp_path / "f5.nii.gz", data)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (dst,) = make_isotropic(src, tmp_path / "iso.nii.gz", steps=2, values=NO_ENVELOPE)
    finally:
        torch.set_num_threads(threads)
    out = np.asarray(nib.load(dst).dataobj)
    ref = out[..., 0, 0].mean()
    for t in range(2):
        for e in range(2):
            assert out[..., t, e].mean() / ref == pytest.approx(1 + t + 10 * e, rel=0.05)
