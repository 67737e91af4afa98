"""MONAI conventions of every exported transform: Rand prefix / prob / seeding, invertibility,
lazy resampling, backend, meta_keys -- and the docs table that states them."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("monai")
nib = pytest.importorskip("nibabel")

from monai.data import MetaTensor, set_track_meta  # noqa: E402
from monai.transforms import (  # noqa: E402
    Compose,
    EnsureChannelFirstd,
    InvertibleTransform,
    LazyTransform,
    LoadImaged,
    MapTransform,
    Orientationd,
    Randomizable,
    RandomizableTransform,
    SaveImaged,
    Spacingd,
    Transform,
)
from monai.utils import TransformBackends  # noqa: E402

import sr_domains.monai as srm  # noqa: E402
from sr_domains.medical.geometry import corners, upscaled_affine  # noqa: E402
from sr_domains.testing.medical import interp_model, make_nifti, oblique_affine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
AFF = oblique_affine((1.0, 1.25, 3.0))
pytestmark = [
    pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader"),
    pytest.mark.filterwarnings("ignore::FutureWarning:monai.*"),
]
TRANSFORMS = {
    name: obj
    for name in srm.__all__
    if isinstance(obj := getattr(srm, name), type) and issubclass(obj, Transform)
}
RAND_KW = {"noise": "rician", "noise_std": (0.02, 0.1), "sigma": (0.5, 1.5), "axes": (0, 1)}


def _image(shape=(8, 6, 4)) -> MetaTensor:
    x = MetaTensor(torch.rand(1, *shape), affine=torch.as_tensor(AFF))
    x.meta.update(original_affine=AFF.copy(), spatial_shape=np.array(shape))
    return x


def _make(name: str, prob: float = 1.0) -> Transform:
    """One instance of each exported transform."""
    cls = TRANSFORMS[name]
    if name.startswith("SuperResolution"):
        return (
            cls("img", interp_model(2), device="cpu")
            if name.endswith("d")
            else cls(interp_model(2), device="cpu")
        )
    if name.startswith("RandMakeLowResolution"):
        return cls("img", prob=prob, **RAND_KW) if name.endswith("d") else cls(prob, **RAND_KW)
    if name.startswith("MakeLowResolution"):
        return cls("img", axes=(0, 1)) if name.endswith("d") else cls(axes=(0, 1))
    if name.startswith("MakeIsotropic"):  # no training: the network is cubic interpolation
        kw = {"steps": 0, "warm_start": False, "device": "cpu"}
        return cls("img", **kw) if name.endswith("d") else cls(**kw)
    assert name.startswith("SRInvert"), name
    return cls("img") if name.endswith("d") else cls()


def _run(t: Transform, x: MetaTensor) -> MetaTensor:
    if isinstance(t, MapTransform):
        d = t({"img": x})
        return d.get("img_lr", d["img"])
    return t(x)


def test_the_exported_transforms():
    assert set(TRANSFORMS) == {
        "SuperResolution",
        "SuperResolutiond",
        "MakeLowResolution",
        "MakeLowResolutiond",
        "RandMakeLowResolution",
        "RandMakeLowResolutiond",
        "SRInvert",
        "SRInvertd",
        "MakeIsotropic",
        "MakeIsotropicd",
    }


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_class_contracts(name):
    cls = TRANSFORMS[name]
    assert cls.backend and all(isinstance(b, TransformBackends) for b in cls.backend)
    rand = name.startswith("Rand")
    assert issubclass(cls, Randomizable) == rand
    assert not issubclass(cls, LazyTransform)  # SR computes pixels: pending ops run first
    params = inspect.signature(cls).parameters
    if rand:
        assert issubclass(cls, RandomizableTransform) and "prob" in params
    if name.endswith("d"):
        assert issubclass(cls, MapTransform)
        assert {"keys", "allow_missing_keys", "meta_keys", "meta_key_postfix"} <= set(params)
        array = TRANSFORMS[name[:-1]]
        assert cls.backend == array.backend
        assert issubclass(cls, InvertibleTransform) == issubclass(array, InvertibleTransform)
    else:
        assert not issubclass(cls, MapTransform)


@pytest.mark.parametrize("name", [n for n in sorted(TRANSFORMS) if n.startswith("Rand")])
def test_random_transforms_follow_monai_seeding(name):
    x = _image()
    t = _make(name)
    assert t.set_random_state(seed=3) is t
    a = _run(t, x)
    b = _run(_make(name).set_random_state(seed=3), x)
    c = _run(_make(name).set_random_state(seed=4), x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert _run(t, x).shape == a.shape and not torch.equal(_run(t, x), a)  # a new draw per call
    # randomize() draws; prob=0 never augments: the deterministic LR image
    t0 = _make(name, prob=0.0).set_random_state(seed=3)
    t0.randomize()
    assert not t0._do_transform
    plain = srm.MakeLowResolution(axes=(0, 1))(x)
    assert torch.equal(_run(t0, x).as_tensor(), plain.as_tensor())
    np.testing.assert_allclose(a.affine.numpy(), plain.affine.numpy())  # same LR geometry


def test_rand_dict_shares_the_draw_but_not_the_noise_field():
    x = _image()
    t = srm.RandMakeLowResolutiond(["a", "b"], prob=1.0, noise="gaussian", noise_std=0.1)
    d = t.set_random_state(seed=0)({"a": x, "b": x.clone()})
    clean = srm.MakeLowResolution()(x)
    ra, rb = (d["a_lr"] - clean).numpy(), (d["b_lr"] - clean).numpy()
    assert abs(ra.std() - rb.std()) < 0.02 and not np.allclose(ra, rb)


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_invertible_means_inverse_restores_the_input_grid(name):
    x = _image()
    t = _make(name)
    y = _run(t, x)
    if not isinstance(t, InvertibleTransform):
        return
    back = t.inverse({"img": y})["img"] if isinstance(t, MapTransform) else t.inverse(y)
    assert back.shape == x.shape and not back.applied_operations
    np.testing.assert_allclose(back.affine.numpy(), AFF, atol=1e-12)


def _doc_table() -> dict[str, dict[str, str]]:
    text = (REPO / "docs" / "monai.md").read_text()
    section = text.split("## MONAI conventions", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, dict[str, str]] = {}
    header: list[str] = []
    for line in section.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not header:
            header = [c.lower() for c in cells]
            continue
        rows[cells[0].strip("`")] = dict(zip(header[1:], cells[1:]))
    assert header[:5] == ["transform", "random?", "invertible?", "lazy?", "backend"], header
    return rows


def _yes(cell: str) -> bool:
    match = re.match(r"\W*(\w+)", cell)
    word = match.group(1).lower() if match else ""
    assert word in ("yes", "no"), cell
    return word == "yes"


def test_docs_conventions_table_states_what_the_classes_do():
    rows = _doc_table()
    assert set(rows) == set(TRANSFORMS)
    for name, cls in TRANSFORMS.items():
        row = rows[name]
        assert _yes(row["random?"]) == issubclass(cls, Randomizable), name
        assert _yes(row["invertible?"]) == issubclass(cls, InvertibleTransform), name
        assert _yes(row["lazy?"]) == issubclass(cls, LazyTransform), name
        documented = {b.strip().strip("`").lower() for b in row["backend"].split(",")}
        assert documented == {b.value for b in cls.backend}, name


def test_lazy_compose_gives_the_same_result(tmp_path):
    """In Compose(lazy=True) the pending Orientation/Spacing ops are applied before the SR
    transform (it is not lazy) and the result equals the eager pipeline. The two resample
    differently (1e-16 residues in the zero padding at different voxels, depending on the
    MONAI and numpy versions); the zero-background rule counts those as zero."""
    src = make_nifti(tmp_path / "in.nii.gz", shape=(14, 12, 5), spacing=(1.0, 1.25, 3.0))
    steps = [
        LoadImaged("img"),
        EnsureChannelFirstd("img"),
        Orientationd("img", "LPS"),
        Spacingd("img", pixdim=(1.5, 1.5, 3.0)),
        srm.SuperResolutiond("img", interp_model(2), device="cpu"),
    ]
    eager = Compose(steps)({"img": str(src)})["img"]
    lazy = Compose(steps, lazy=True)({"img": str(src)})["img"]
    assert lazy.shape == eager.shape and not lazy.pending_operations
    np.testing.assert_allclose(lazy.affine.numpy(), eager.affine.numpy(), atol=1e-6)
    np.testing.assert_allclose(lazy.numpy(), eager.numpy(), atol=1e-4)


def test_meta_dict_mode_without_metatensors(tmp_path):
    """set_track_meta(False): plain tensors plus "<key>_meta_dict" (LoadImaged(image_only=
    False)); the transforms read and update the meta dicts, so SaveImaged(meta_keys=...)
    writes the right affine."""
    src = make_nifti(tmp_path / "in.nii.gz", shape=(12, 10, 4), spacing=(1.0, 1.25, 3.0))
    file_aff = nib.load(src).affine
    pipe = Compose(
        [
            LoadImaged("img", image_only=False),
            EnsureChannelFirstd("img", channel_dim="no_channel"),
            srm.MakeLowResolutiond("img", lr_keys="lr", meta_keys="img_meta_dict"),
            srm.SuperResolutiond("lr", interp_model(2), device="cpu", meta_keys="lr_meta_dict"),
        ]
    )
    set_track_meta(False)
    try:
        d = pipe({"img": str(src)})
        lr_aff = np.asarray(d["lr_meta_dict"]["affine"])  # SR of the LR: the HR grid again
        d = srm.SRInvertd("lr")(d)
    finally:
        set_track_meta(True)
    assert type(d["lr"]) is torch.Tensor and tuple(d["lr"].shape) == (1, 12, 10, 4)
    np.testing.assert_allclose(lr_aff, file_aff, atol=1e-5)
    np.testing.assert_allclose(d["lr_meta_dict"]["affine"], file_aff, atol=1e-5)
    np.testing.assert_allclose(d["img_meta_dict"]["affine"], file_aff, atol=1e-5)  # untouched
    # MONAI 1.6's writer itself needs MetaTensors (its resample step reads .affine), so the
    # file is written with tracking back on, from the plain tensor and its meta dict
    save = SaveImaged(
        "lr",
        meta_keys="lr_meta_dict",
        output_dir=tmp_path / "o",
        separate_folder=False,
        print_log=False,
    )
    save(d)
    (saved,) = (tmp_path / "o").glob("*.nii.gz")
    np.testing.assert_allclose(nib.load(saved).affine, file_aff, atol=1e-4)
    # the LR step alone: its meta dict describes the LR grid (same field of view)
    set_track_meta(False)
    try:
        d = Compose(pipe.transforms[:3])({"img": str(src)})
    finally:
        set_track_meta(True)
    lr_aff = np.asarray(d["lr_meta_dict"]["affine"])
    assert tuple(d["lr"].shape) == (1, 6, 5, 4)
    np.testing.assert_allclose(upscaled_affine(lr_aff, (0, 1), 2), file_aff, atol=1e-5)
    assert np.abs(corners(lr_aff, (6, 5, 4)) - corners(file_aff, (12, 10, 4))).max() < 1e-4


def test_meta_keys_must_match_keys():
    with pytest.raises(ValueError, match="meta_keys"):
        srm.SuperResolutiond(["a", "b"], interp_model(2), meta_keys="a_meta_dict", device="cpu")
