"""SupervisedEvaluator + SRPrepareBatch + SRInferer on 3-D volumes (real NIfTI files of
different sizes, MONAI's DataLoader, PSNR/SSIM handlers, SRInvertd + SaveImaged post)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("monai")
pytest.importorskip("ignite")
nib = pytest.importorskip("nibabel")

from ignite.engine import Events  # noqa: E402
from monai.data import DataLoader, Dataset, MetaTensor  # noqa: E402
from monai.engines import SupervisedEvaluator  # noqa: E402
from monai.handlers import IgniteMetricHandler, PeakSignalToNoiseRatio, from_engine  # noqa: E402
from monai.metrics import SSIMMetric  # noqa: E402
from monai.transforms import (  # noqa: E402
    Compose,
    EnsureChannelFirstd,
    LoadImaged,
    SaveImaged,
    ScaleIntensityRanged,
)

from sr_domains import metrics  # noqa: E402
from sr_domains.medical.geometry import corners  # noqa: E402
from sr_domains.monai import MakeLowResolutiond, SRInferer, SRInvertd, SRPrepareBatch  # noqa: E402
from sr_domains.testing.medical import interp_model, make_nifti, oblique_affine  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader"),
    pytest.mark.filterwarnings("ignore::FutureWarning:monai.*"),
]
SHAPES = [(24, 20, 4), (28, 24, 5)]


@pytest.fixture
def hr_files(tmp_path):
    out = []
    for i, shape in enumerate(SHAPES):
        aff = oblique_affine((1.0, 1.1, 3.0))
        aff[:3, 3] += 9.0 * i
        out.append(make_nifti(tmp_path / f"hr{i}.nii.gz", shape=shape, affine=aff))
    return out


def _loader(files) -> DataLoader:
    pre = Compose(
        [
            LoadImaged("image"),
            EnsureChannelFirstd("image"),
            ScaleIntensityRanged("image", a_min=0.0, a_max=1000.0, b_min=0.0, b_max=1.0),
            MakeLowResolutiond("image", lr_keys="image_lr", axes=(0, 1), degrade="area"),
        ]
    )
    data = [{"image": str(f)} for f in files]
    return DataLoader(Dataset(data, transform=pre), batch_size=1, num_workers=0)


def _evaluator(loader, fold: bool, post=None) -> tuple[SupervisedEvaluator, list]:
    spatial_dims, win = (3, (11, 11, 1)) if not fold else (2, 11)
    preds: list = []
    ev = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=loader,
        network=interp_model(2),
        inferer=SRInferer(axes=(0, 1)),
        prepare_batch=SRPrepareBatch("image_lr", "image", fold=fold),
        key_val_metric={
            "psnr": PeakSignalToNoiseRatio(
                max_val=1.0, output_transform=from_engine(["pred", "label"])
            )
        },
        additional_metrics={
            "ssim": IgniteMetricHandler(
                metric_fn=SSIMMetric(spatial_dims=spatial_dims, data_range=1.0, win_size=win),
                output_transform=from_engine(["pred", "label"]),
            )
        },
        postprocessing=post,
    )
    ev.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: preds.extend(d["pred"] for d in e.state.output)
    )
    return ev, preds


def _reference(files, per_slice: bool) -> tuple[float, float]:
    """PSNR/SSIM of the same LR -> SR computed outside MONAI's engine (sr_domains.metrics)."""
    ps, ss = [], []
    for item in _loader(files):
        hr, lr = item["image"], item["image_lr"]
        sr = SRInferer(axes=(0, 1))(lr, interp_model(2))
        h, s = hr[0, 0].numpy(), sr[0, 0].numpy()
        if per_slice:
            for k in range(h.shape[-1]):
                ps.append(metrics.psnr(s[..., k], h[..., k], data_range=1.0))
                ss.append(metrics.ssim(s[..., k], h[..., k], data_range=1.0))
        else:
            ps.append(metrics.psnr(s, h, data_range=1.0, volumetric=True))
            ss.append(
                np.mean(
                    [metrics.ssim(s[..., k], h[..., k], data_range=1.0) for k in range(h.shape[-1])]
                )
            )
    return float(np.mean(ps)), float(np.mean(ss))


def test_volume_evaluator_keeps_geometry_and_matches_reference_metrics(hr_files, tmp_path):
    """fold=False: per-volume metrics; predictions are MetaTensors on the HR grid that
    SRInvertd + SaveImaged write aligned with the HR files."""
    post = Compose(
        [
            SRInvertd("pred"),
            SaveImaged("pred", output_dir=tmp_path / "sr", separate_folder=False, print_log=False),
        ]
    )
    ev, preds = _evaluator(_loader(hr_files), fold=False, post=post)
    ev.run()
    assert len(preds) == 2
    for pred, f, shape in zip(preds, hr_files, SHAPES):
        assert isinstance(pred, MetaTensor) and tuple(pred.shape[1:]) == shape
        np.testing.assert_allclose(pred.affine.numpy(), nib.load(f).affine, atol=1e-5)
    for f in hr_files:
        out = nib.load(tmp_path / "sr" / f.name.replace(".nii.gz", "_trans.nii.gz"))
        src = nib.load(f)
        assert out.shape == src.shape
        assert np.abs(corners(out.affine, out.shape) - corners(src.affine, src.shape)).max() < 1e-4
    psnr, ssim = _reference(hr_files, per_slice=False)
    assert ev.state.metrics["psnr"] == pytest.approx(psnr, rel=1e-4)
    assert ev.state.metrics["ssim"] == pytest.approx(ssim, abs=1e-4)
    assert 20 < psnr < 60 and 0.5 < ssim < 1.0


def test_slice_evaluator_default_fold(hr_files):
    """fold=True (the default, as for trainers): 3-D batches become 2-D slices; SRInferer runs
    them (this raised IndexError before) and the metrics are per-slice means."""
    ev, preds = _evaluator(_loader(hr_files), fold=True)
    ev.run()
    assert len(preds) == sum(s[-1] for s in SHAPES)
    assert {tuple(p.shape) for p in preds} == {(1, 24, 20), (1, 28, 24)}
    psnr, ssim = _reference(hr_files, per_slice=True)
    assert ev.state.metrics["psnr"] == pytest.approx(psnr, rel=1e-4)
    assert ev.state.metrics["ssim"] == pytest.approx(ssim, abs=1e-4)
