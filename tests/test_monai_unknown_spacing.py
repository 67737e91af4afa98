"""A NIfTI ``pixdim`` of 0 (unknown spacing) picks the same in-plane axes in the MONAI
transforms as in the NIfTI path: LoadImage's header and affine already read the 0 as 1, which
was compared with the known spacings (axes (0, 2) where upscale_nifti takes (0, 1))."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

pytest.importorskip("monai")
nib = pytest.importorskip("nibabel")

from _raw_nifti import write_raw  # noqa: E402
from monai.data import MetaTensor, list_data_collate  # noqa: E402
from monai.transforms import (  # noqa: E402
    Compose,
    EnsureChannelFirst,
    LoadImage,
    Orientation,
    Spacing,
)

import sr_domains.monai as srm  # noqa: E402
from sr_domains.errors import ConfigError, InputFileError  # noqa: E402
from sr_domains.medical import upscale_nifti  # noqa: E402
from sr_domains.testing.medical import interp_model, make_nifti  # noqa: E402
from sr_domains.testing.models import tiny_model  # noqa: E402


def _raw_file(path, pixdim, shape=(12, 10, 4), qform=None):
    """A real file whose header holds ``pixdim`` as given (nibabel's writer would replace a 0
    by 1), sform code 0 and qform code 0 (1 with ``qform``, which may permute the axes)."""
    data = (np.arange(np.prod(shape)).reshape(shape) % 50).astype(np.float32) / 50
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(np.float32)
    if qform is not None:
        hdr.set_qform(qform, code=1)
    hdr["pixdim"][1:4] = pixdim
    return write_raw(path, hdr, data)


def _load(path, *more):
    return Compose([LoadImage(image_only=True), EnsureChannelFirst(), *more])(str(path))


@pytest.fixture(autouse=True)
def _quiet(caplog):
    caplog.set_level(logging.ERROR)  # (nibabel: "setting 0 dims to 1"; the profile warning)


def test_monai_takes_the_axes_the_nifti_path_takes(tmp_path):
    src = _raw_file(tmp_path / "in.nii", (0.0, 1.5, 0.0))
    img = _load(src)
    assert np.allclose(np.asarray(img.meta["pixdim"])[1:4], (1.0, 1.5, 1.0))  # the 0 read as 1
    want = nib.load(upscale_nifti(src, tmp_path / "up.nii", model=interp_model(2))).shape
    assert want == (24, 20, 4)
    out = srm.SuperResolution(model=interp_model(2), scale=2)(img)
    assert tuple(out.shape[1:]) == want  # was (24, 10, 8)
    lr = srm.MakeLowResolution(scale=2)(img)
    assert tuple(lr.shape[1:]) == (6, 5, 4)  # the pair's planes: those upscale takes
    batch = list_data_collate([{"img": _load(src)}, {"img": _load(src)}])["img"]
    up = srm.SRInferer()(batch, tiny_model(1, 2))
    assert tuple(up.shape[2:]) == want
    _known_or_resampled_spacing_still_decides(tmp_path, img)


def test_a_meta_that_keeps_the_raw_pixdim_decides_alone(tmp_path):
    """No file to read again: a meta whose pixdim still holds the 0 says the spacing is unknown;
    an sform code > 0 states it (the affine decides)."""
    x = torch.rand(1, 12, 10, 4)

    def image(sform_code):
        pixdim = np.array([1, 0, 1.5, 0, 1, 1, 1, 1], np.float32)
        aff = torch.as_tensor(np.diag([1.0, 1.5, 1.0, 1.0]))
        return MetaTensor(x, meta={"affine": aff, "pixdim": pixdim, "sform_code": sform_code})

    out = srm.SuperResolution(model=interp_model(2), scale=2)(image(0))
    assert tuple(out.shape[1:]) == (24, 20, 4)
    out = srm.SuperResolution(model=interp_model(2), scale=2)(image(np.array(1, np.int16)))
    assert tuple(out.shape[1:]) == (24, 10, 8)


def _known_or_resampled_spacing_still_decides(tmp_path, unknown):
    """A stated 1 mm is a spacing (finest first), and so is one a Spacing transform chose."""
    stated = _raw_file(tmp_path / "one.nii", (1.0, 1.5, 1.0))
    out = srm.SuperResolution(model=interp_model(2), scale=2)(_load(stated))
    assert tuple(out.shape[1:]) == (24, 10, 8)
    resampled = Spacing(pixdim=(1.0, 2.0, 1.0))(unknown)
    out = srm.SuperResolution(model=interp_model(2), scale=2)(resampled)
    n = resampled.shape[1:]
    assert tuple(out.shape[1:]) == (2 * n[0], n[1], 2 * n[2])
    sform = make_nifti(tmp_path / "s.nii.gz", shape=(12, 10, 4), spacing=(1.0, 1.5, 1.0))
    out = srm.SuperResolution(model=interp_model(2), scale=2)(_load(sform))
    assert tuple(out.shape[1:]) == (24, 10, 8)


def test_after_orientation_the_file_axes_grow_that_upscale_nifti_grows(tmp_path):
    """An axis-permuting qform (file axis 0 -> S, 1 -> R, 2 -> A) and Orientation("RAS"): the
    array order was taken on the reoriented array, so file axes 1 and 2 grew where
    upscale_nifti grows 0 and 1."""
    perm = np.zeros((4, 4))
    perm[2, 0] = perm[0, 1] = perm[1, 2] = perm[3, 3] = 1
    src = _raw_file(tmp_path / "p.nii", (0.0, 1.5, 0.0), qform=perm @ np.diag([1, 1.5, 1, 1]))
    want = nib.load(upscale_nifti(src, tmp_path / "up.nii", model=interp_model(2))).shape
    assert want == (24, 20, 4)  # file axes 0 and 1
    ras = Orientation("RAS", labels=(("L", "R"), ("P", "A"), ("I", "S")))
    img = _load(src, ras)
    assert tuple(img.shape[1:]) == (10, 4, 12)  # (R, A, S) = file axes (1, 2, 0)
    out = srm.SuperResolution(model=interp_model(2), scale=2)(img)
    assert tuple(out.shape[1:]) == (20, 4, 24)  # was (20, 8, 12)
    lr = srm.MakeLowResolution(scale=2)(img)
    assert tuple(lr.shape[1:]) == (5, 4, 6)
    batch = list_data_collate([{"img": img}, {"img": _load(src, ras)}])["img"]
    up = srm.SRInferer()(batch, tiny_model(1, 2))
    assert tuple(up.shape[2:]) == (20, 4, 24)


def test_a_file_that_cannot_be_read_again_is_named_in_a_warning(tmp_path, caplog):
    """Moved after loading (a cached dataset), or another file at that name: the affine's
    spacing decides, and a WARNING names the file (it was a debug line, or nothing)."""
    src = _raw_file(tmp_path / "u.nii", (0.0, 1.5, 0.0))
    img = _load(src)
    caplog.set_level(logging.WARNING, logger="sr_domains.monai._spacing")
    src.rename(tmp_path / "moved.nii")
    out = srm.SuperResolution(model=interp_model(2), scale=2)(img)
    assert tuple(out.shape[1:]) == (24, 10, 8)  # the affine's finest axes
    said = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 1 and str(src) in said[0].getMessage()
    assert "no longer there" in said[0].getMessage()
    caplog.clear()
    _raw_file(src, (0.0, 1.5, 0.0), shape=(12, 10, 6))  # another volume at that name
    out = srm.SuperResolution(model=interp_model(2), scale=2)(img)
    assert tuple(out.shape[1:]) == (24, 10, 8)
    said = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 1 and str(src) in said[0].getMessage()
    assert "no longer matches" in said[0].getMessage() and "dim" in said[0].getMessage()
    caplog.clear()
    stated = _load(_raw_file(tmp_path / "one.nii", (1.0, 1.5, 1.0)))  # read, known: no word
    srm.SuperResolution(model=interp_model(2), scale=2)(stated)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_a_moved_file_is_warned_of_once_then_at_debug(tmp_path, caplog):
    """A qform-only 1 mm file moved after loading: the WARNING came on every transform call
    (one per sample and epoch in a training loop); now once per file, later calls at debug."""
    img = nib.Nifti1Image(np.random.default_rng(0).random((16, 16, 8), np.float32), np.eye(4))
    img.set_sform(None, code=0)
    img.set_qform(np.eye(4), code=1)
    src = tmp_path / "a.nii.gz"
    nib.save(img, src)
    x = _load(src)
    src.rename(tmp_path / "b.nii.gz")
    caplog.set_level(logging.DEBUG, logger="sr_domains.monai._spacing")
    lr = srm.MakeLowResolution(scale=2)
    for _ in range(3):
        assert tuple(lr(x).shape[1:]) == (8, 8, 8)  # the affine's spacing decides
    batch = list_data_collate([{"img": x}, {"img": x}])["img"]
    srm.SRInferer()(batch, tiny_model(1, 2))
    said = [r for r in caplog.records if r.name == "sr_domains.monai._spacing"]
    levels = [r.levelno for r in said]
    assert levels.count(logging.WARNING) == 1 and levels[0] == logging.WARNING, levels
    assert levels.count(logging.DEBUG) == 4  # (two more transforms, the batch's two images)
    assert all(str(src) in r.getMessage() and "no longer there" in r.getMessage() for r in said)


def test_a_resampled_image_is_known_spacing_even_with_a_raw_pixdim_of_0():
    """A meta keeping the raw pixdim 0 (a dict copied from the header) on an image resampled
    from its file's grid (axis 0: 1 -> 2 mm): the chosen spacing decides, as the module docs
    say (the pixdim 0 decided: axes 0 and 1 grew in array order)."""
    x = torch.rand(1, 6, 10, 4)
    pixdim = np.array([1, 0, 1.5, 0, 1, 1, 1, 1], np.float32)
    original = np.diag([1.0, 1.5, 1.0, 1.0])

    def image(spacing):
        aff = torch.as_tensor(np.diag([*spacing, 1.0]))
        meta = {"affine": aff, "pixdim": pixdim, "sform_code": 0, "original_affine": original}
        return MetaTensor(x, meta=meta)

    out = srm.SuperResolution(model=interp_model(2), scale=2)(image((2.0, 1.5, 1.0)))
    assert tuple(out.shape[1:]) == (6, 20, 8)  # the finest: 1.5 mm and 1 mm
    out = srm.SuperResolution(model=interp_model(2), scale=2)(image((1.0, 1.5, 1.0)))
    assert tuple(out.shape[1:]) == (12, 20, 4)  # on the file's grid: the 0 decides


def test_each_file_is_read_again_once_per_version(tmp_path, monkeypatch):
    """A transform runs once per sample and epoch: the raw header of a file is read once, and
    again only when the file changed (its modification time or size)."""
    from sr_domains.monai import _spacing

    src = _raw_file(tmp_path / "c.nii", (0.0, 1.5, 0.0))
    img = _load(src)
    reads = []
    real = nib.load
    monkeypatch.setattr(nib, "load", lambda p, *a, **k: reads.append(p) or real(p, *a, **k))
    _spacing._read_header.cache_clear()
    for _ in range(3):
        assert tuple(srm.MakeLowResolution(scale=2)(img).shape[1:]) == (6, 5, 4)
    assert reads == [str(src)]
    _raw_file(src, (0.0, 1.5, 0.0), shape=(12, 10, 6))  # rewritten: read again, then refused
    srm.MakeLowResolution(scale=2)(img)
    assert reads == [str(src)] * 2


def test_make_isotropic_refuses_an_unknown_spacing(tmp_path):
    """MakeIsotropic read the affine's invented 1 mm (pixdim 0.5 / 0.5 / 0 planned a x2 grid
    from a slice spacing nobody stated); it now decides as the other transforms do and
    refuses, naming the file (also after Orientation, and for a meta with no file)."""
    src = _raw_file(tmp_path / "thick.nii", (0.5, 0.5, 0.0), shape=(16, 16, 6))
    iso = srm.MakeIsotropic(steps=1, device="cpu")
    ras = Orientation("RAS", labels=(("L", "R"), ("P", "A"), ("I", "S")))
    for img in (_load(src), _load(src, ras)):
        with pytest.raises(InputFileError, match="spacing is unknown") as err:
            iso(img)
        assert err.value.path == str(src)
    d = {"image": _load(src)}
    with pytest.raises(InputFileError, match="thick.nii"):
        srm.MakeIsotropicd("image", steps=1, device="cpu")(d)
    pixdim = np.array([1, 0.5, 0.5, 0, 1, 1, 1, 1], np.float32)
    mem = MetaTensor(
        torch.rand(1, 16, 16, 6), meta={"affine": np.diag([0.5, 0.5, 1, 1]), "pixdim": pixdim}
    )
    with pytest.raises(ConfigError, match="MakeIsotropic: the voxel spacing is unknown"):
        iso(mem)
    stated = _load(_raw_file(tmp_path / "stated.nii", (0.5, 0.5, 1.0), shape=(16, 16, 6)))
    out = srm.MakeIsotropic(steps=1, device="cpu", warm_start=False)(stated)
    assert tuple(out.shape[1:]) == (16, 16, 12)  # a stated 1 mm plans as before


def _in_memory(shape=(12, 10, 4), original_affine=True):
    """An image built in memory whose (permuting) affine says file axis 0 -> S, 1 -> R,
    2 -> A and whose pixdim 0 / 1.5 / 0 is in the meta only (no file to read again), also
    in MONAI's original_pixdim."""
    perm = np.zeros((4, 4))
    perm[2, 0] = perm[0, 1] = perm[1, 2] = perm[3, 3] = 1
    aff = perm @ np.diag([1.0, 1.5, 1.0, 1.0])
    pixdim = np.array([1, 0, 1.5, 0, 1, 1, 1, 1], np.float32)
    meta = {"affine": torch.as_tensor(aff), "pixdim": pixdim.copy(), "sform_code": 0}
    meta["original_pixdim"] = pixdim.copy()
    if original_affine:
        meta["original_affine"] = aff.copy()
    return MetaTensor(torch.rand(1, *shape), meta=meta)


def test_a_meta_only_pixdim_0_survives_orientation_in_original_pixdim():
    """Orientation rewrites pixdim from the affine (0 -> 1), so a pixdim 0 held in the meta
    only was lost and the finest-spacing rule grew the S and A axes; MONAI's original_pixdim
    (copied unchanged by its transforms) now carries it: file axes 0 and 1 grow, as
    upscale_nifti grows them."""
    ras = Orientation("RAS", labels=(("L", "R"), ("P", "A"), ("I", "S")))
    img = ras(_in_memory())
    pix = np.asarray(img.meta["pixdim"])[1:4]  # MONAI >= 1.5 rewrites it from the affine
    assert np.allclose(pix, (1.5, 1.0, 1.0)) or np.allclose(pix, (0.0, 1.5, 0.0))  # (1.4 kept it)
    assert tuple(img.shape[1:]) == (10, 4, 12)  # (R, A, S) = file axes (1, 2, 0)
    out = srm.SuperResolution(model=interp_model(2), scale=2)(img)
    assert tuple(out.shape[1:]) == (20, 4, 24)  # was (10, 8, 24)
    assert tuple(srm.MakeLowResolution(scale=2)(img).shape[1:]) == (5, 4, 6)
    batch = list_data_collate([{"img": img}, {"img": ras(_in_memory())}])["img"]
    assert tuple(srm.SRInferer()(batch, tiny_model(1, 2)).shape[2:]) == (20, 4, 24)
    with pytest.raises(ConfigError, match="spacing is unknown"):
        srm.MakeIsotropic(steps=1, device="cpu")(ras(_in_memory(shape=(12, 10, 6))))
    _resampled_is_known_spacing()


def _resampled_is_known_spacing():
    """A Spacing transform chose the spacing: known, with or without original_affine (without
    it, the voxel sizes no longer match original_pixdim's stated ones)."""
    for with_affine in (True, False):
        img = _in_memory(original_affine=with_affine)
        if not with_affine:
            img.meta["affine"] = torch.as_tensor(np.diag([1.0, 1.5, 1.0, 1.0]))
        res = Spacing(pixdim=(1.0, 2.0, 1.0))(img)
        n = res.shape[1:]
        out = srm.SuperResolution(model=interp_model(2), scale=2)(res)
        assert tuple(out.shape[1:]) == (2 * n[0], n[1], 2 * n[2]), with_affine


class _WorkerLog(torch.utils.data.Dataset):
    """Runs a transform on one image in a DataLoader worker and returns what it logged."""

    def __init__(self, img):
        self.img = img

    def __len__(self):
        return 1

    def __getitem__(self, i):
        said = []
        handler = logging.Handler(logging.DEBUG)
        handler.emit = lambda r: said.append((r.levelno, r.getMessage()))
        logger = logging.getLogger("sr_domains.monai._spacing")
        logger.addHandler(handler)
        old = logger.level
        logger.setLevel(logging.DEBUG)
        try:
            srm.MakeLowResolution(scale=2)(self.img)
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old)
        return said


def test_a_workers_warning_says_it_is_once_per_worker_process(tmp_path):
    """Non-persistent DataLoader workers are new processes each epoch, each warning once; the
    WARNING now says which worker it came from and that persistent_workers=True keeps it to
    once per worker and run."""
    src = _raw_file(tmp_path / "w.nii", (0.0, 1.5, 0.0))
    img = _load(src)
    src.rename(tmp_path / "elsewhere.nii")
    loader = torch.utils.data.DataLoader(
        _WorkerLog(img), num_workers=1, collate_fn=lambda items: items[0]
    )
    for _epoch in range(2):
        said = next(iter(loader))
        assert [lvl for lvl, _ in said] == [logging.WARNING]
        msg = said[0][1]
        assert str(src) in msg and "worker 0 of 1" in msg and "persistent_workers" in msg
    loader = torch.utils.data.DataLoader(
        _WorkerLog(img), num_workers=1, collate_fn=lambda items: items[0], persistent_workers=True
    )
    epochs = [[lvl for lvl, _ in next(iter(loader))] for _epoch in range(2)]
    assert epochs == [[logging.WARNING], [logging.DEBUG]]  # one worker, kept: once per run


def _sform_file(path, pixdim, sz=3.0, qform=False):
    """A real file with an sform (code 2) stating 0.9 x 0.9 x ``sz`` mm voxels and a raw
    ``pixdim`` as given (also a qform, code 1, with ``qform``), 20 x 20 x 12 int16."""
    vol = np.random.default_rng(0).integers(0, 1000, (20, 20, 12)).astype(np.int16)
    aff = np.array([[0.9, 0, 0, -9], [0, 0.9, 0, -8], [0, 0, sz, 5], [0, 0, 0, 1]])
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(vol.shape)
    hdr.set_data_dtype(np.int16)
    hdr.set_qform(np.diag([0.9, 0.9, 1.0, 1.0]) if qform else None, code=1 if qform else 0)
    hdr.set_sform(aff, code=2)
    hdr.set_xyzt_units("mm")
    hdr["pixdim"][1:4] = pixdim
    return write_raw(path, hdr, vol)


@pytest.mark.parametrize("qform", [False, True])
def test_an_sform_that_loadimage_replaced_is_refused(tmp_path, qform):
    """pixdim 0.9 / 0.9 / 0 under an sform stating 3 mm slices: LoadImage replaced the sform
    by the pixdim's qform (0 read as 1 mm) and kept sform_code 2, so MakeIsotropic planned 13
    slices of 0.9 mm from the invented 1 mm (upscale_nifti: 40 from the sform's 3 mm) and the
    SR transforms scaled that affine; the image is now refused, naming the file."""
    src = _sform_file(tmp_path / "pix0.nii.gz", (0.9, 0.9, 0.0), qform=qform)
    ras = Orientation("RAS", labels=(("L", "R"), ("P", "A"), ("I", "S")))
    for img in (_load(src), _load(src, ras)):
        assert np.allclose(np.asarray(img.affine)[:3, 2], (0, 0, 1))  # (not the file's 3 mm)
        with pytest.raises(InputFileError, match="LoadImage replaced the sform") as err:
            srm.MakeIsotropic(steps=1, seed=0, device="cpu")(img)
        assert err.value.path == str(src)
        with pytest.raises(InputFileError, match="pix0.nii.gz"):
            srm.SuperResolution(model=interp_model(2), scale=2)(img)
    batch = list_data_collate([{"img": _load(src)}, {"img": _load(src)}])["img"]
    with pytest.raises(InputFileError, match="LoadImage replaced the sform"):
        srm.SRInferer()(batch, tiny_model(1, 2))


def test_an_sform_that_loadimage_kept_still_decides(tmp_path):
    """Old-accepted stays accepted: pixdim agreeing with the sform (40 slices, as the NIfTI
    path), a pixdim of 0 whose sform LoadImage kept (it states 1 mm there), and a pixdim > 0
    that disagrees with the sform (MONAI's choice of the stated pixdim, as before)."""
    from sr_domains.monai._spacing import spacing_unknown

    agree = _load(_sform_file(tmp_path / "agree.nii.gz", (0.9, 0.9, 3.0)))
    out = srm.MakeIsotropic(steps=1, seed=0, device="cpu")(agree)
    assert tuple(out.shape[1:]) == (20, 20, 40)
    for name, pixdim, sz in (("kept.nii", (0.9, 0.9, 0.0), 1.0), ("p2.nii", (0.9, 0.9, 2.0), 3)):
        img = _load(_sform_file(tmp_path / name, pixdim, sz=sz))
        assert not spacing_unknown(img.meta, np.asarray(img.affine), img.shape[1:])
        up = srm.SuperResolution(model=interp_model(2), scale=2)(img)
        assert tuple(up.shape[1:]) == (40, 40, 12)
