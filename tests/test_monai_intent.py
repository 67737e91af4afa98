"""NIfTI intents through MONAI's LoadImage: a label or non-scalar image is refused by the MONAI
transforms and the inferer, naming the file, as the file readers refuse it; scalar intents
(statistical maps, none) are upscaled."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

pytest.importorskip("monai")
nib = pytest.importorskip("nibabel")

from _nifti_intent_files import save_with_intent as _save  # noqa: E402
from monai.data import MetaTensor, list_data_collate  # noqa: E402
from monai.transforms import Compose, EnsureChannelFirstd, LoadImage, LoadImaged  # noqa: E402

from sr_domains.errors import InputFileError  # noqa: E402
from sr_domains.monai import (  # noqa: E402
    MakeIsotropic,
    MakeLowResolution,
    SRInferer,
    SuperResolution,
    SuperResolutiond,
)
from sr_domains.testing.medical import interp_model  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader"),
    pytest.mark.filterwarnings("ignore::FutureWarning:monai.*"),
]


def _load(path):
    return LoadImage(image_only=True, ensure_channel_first=True)(str(path))


@pytest.mark.parametrize(
    ("intent", "name", "shape"),
    [
        ("label", "LABEL", (12, 10, 4)),
        ("neuroname", "NEURONAME", (12, 10, 4)),
        ("vector", "VECTOR", (12, 10, 4)),  # one component: 4-D, loads like an intensity
        ("symmetric matrix", "SYMMATRIX", (12, 10, 4, 1, 6)),
        ("pointset", "POINTSET", (12, 10, 4)),
    ],
)
def test_transforms_refuse_the_intent(tmp_path, intent, name, shape):
    src = _save(tmp_path / "seg.nii.gz", intent, shape)
    x = _load(src)
    assert int(np.asarray(x.meta["intent_code"])) != 0  # (a 0-d array in MONAI's meta)
    match = rf"seg\.nii\.gz: .*intent {name}\b"
    with pytest.raises(InputFileError, match=match):
        SuperResolution(interp_model(2), device="cpu")(x)
    pipe = Compose(
        [LoadImaged("img"), EnsureChannelFirstd("img"), SuperResolutiond("img", interp_model(2))]
    )
    with pytest.raises(RuntimeError) as info:  # MONAI's Compose wraps what a transform raises
        pipe({"img": str(src)})
    assert isinstance(info.value.__cause__, InputFileError)
    assert re.search(match, str(info.value.__cause__))
    with pytest.raises(InputFileError, match=match):
        MakeLowResolution(scale=2)(x)
    if x.ndim == 4:
        with pytest.raises(InputFileError, match=match):
            MakeIsotropic(steps=1, device="cpu")(x)


def test_inferer_refuses_a_batch_with_a_label_item(tmp_path):
    ok = _save(tmp_path / "t1.nii.gz", "none")
    seg = _save(tmp_path / "seg.nii.gz", "label")
    items = [{"img": _load(ok)}, {"img": _load(seg)}]
    batch = list_data_collate(items)["img"]
    assert tuple(batch.shape) == (2, 1, 12, 10, 4)
    with pytest.raises(InputFileError, match=r"seg\.nii\.gz: is a label image \(intent LABEL\)"):
        SRInferer()(batch, interp_model(2))
    out = SRInferer()(list_data_collate([items[0], items[0]])["img"], interp_model(2))
    assert tuple(out.shape) == (2, 1, 24, 20, 4)


def test_without_a_file_name_the_image_is_named():
    x = MetaTensor(torch.rand(1, 12, 10), meta={"intent_code": np.array(1002, np.int16)})
    with pytest.raises(InputFileError, match=r"^the image: is a label image"):
        SuperResolution(interp_model(2), device="cpu")(x)


@pytest.mark.parametrize("intent", ["none", "z score", "t test"])
def test_scalar_intents_are_upscaled(tmp_path, intent):
    x = _load(_save(tmp_path / "map.nii.gz", intent))
    out = SuperResolution(interp_model(2), device="cpu")(x)
    assert tuple(out.shape) == (1, 24, 20, 4)


def test_meta_dict_mode_refuses(tmp_path):
    """Arrays with a separate ``img_meta_dict`` (MONAI not tracking meta) are checked too."""
    from monai.data import set_track_meta

    src = _save(tmp_path / "seg.nii.gz", "label")
    set_track_meta(False)
    try:
        d = LoadImaged("img", image_only=False)({"img": str(src)})
        assert not isinstance(d["img"], MetaTensor) and "img_meta_dict" in d
        d["img"] = d["img"][None]  # channel first by hand (EnsureChannelFirstd needs meta)
        with pytest.raises(InputFileError, match=r"seg\.nii\.gz: is a label image"):
            SuperResolutiond("img", interp_model(2), device="cpu")(d)
    finally:
        set_track_meta(True)
