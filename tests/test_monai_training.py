"""Our models as plain nn.Modules in MONAI engines (SupervisedTrainer / SupervisedEvaluator)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("monai")
pytest.importorskip("ignite")  # MONAI engines run on pytorch-ignite (the monai extra has it)

from ignite.engine import Events
from monai.data import DataLoader, Dataset, MetaTensor
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.transforms import Compose

from sr_domains import create_model
from sr_domains.monai import RandMakeLowResolutiond, SRInferer, SRPrepareBatch
from sr_domains.testing.medical import oblique_affine

AFF = oblique_affine((1.0, 1.0, 2.0))


def _items(n: int, shape=(16, 16)) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        smooth = torch.nn.functional.avg_pool2d(torch.rand(1, 1, *shape, generator=g), 3, 1, 1)
        out.append({"image": MetaTensor(smooth[0], affine=torch.as_tensor(AFF))})
    return out


def _loader(n: int, **kw) -> DataLoader:
    pairs = Compose([RandMakeLowResolutiond("image", noise="gaussian", noise_std=0.01)])
    pairs.set_random_state(seed=0)
    return DataLoader(Dataset(_items(n), transform=pairs), batch_size=1, num_workers=0, **kw)


def test_supervised_trainer_trains_our_model():
    model = create_model("edsr-lite-ca", in_channels=1, scale=2).train()
    before = [p.detach().clone() for p in model.parameters()]
    losses: list[float] = []
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=_loader(3),
        network=model,
        optimizer=torch.optim.Adam(model.parameters(), 1e-3),
        loss_function=torch.nn.L1Loss(),
        prepare_batch=SRPrepareBatch("image_lr", "image"),
        decollate=False,
    )
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: losses.append(float(e.state.output["loss"].detach()))
    )
    trainer.run()
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    changed = [not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters())]
    assert sum(changed) > len(changed) // 2


def test_supervised_evaluator_with_srinferer_fixes_the_affine():
    model = create_model("edsr-lite-ca", in_channels=1, scale=2)
    outputs: list[MetaTensor] = []
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=_loader(2),
        network=model,
        inferer=SRInferer(),
        prepare_batch=SRPrepareBatch("image_lr", "image"),
        decollate=False,
    )
    evaluator.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: outputs.append(e.state.output["pred"])
    )
    evaluator.run()
    assert len(outputs) == 2
    pred = outputs[0]
    assert tuple(pred.shape) == (1, 1, 16, 16)
    # the LR image's affine went through SRInferer: back on the HR grid
    np.testing.assert_allclose(pred.affine.reshape(-1, 4, 4)[0].numpy(), AFF, atol=1e-9)


def test_prepare_batch_folds_slices_of_3d_batches():
    lr, hr = torch.rand(2, 1, 4, 4, 3), torch.rand(2, 1, 8, 8, 3)
    x, y = SRPrepareBatch("lr", "hr")({"lr": lr, "hr": hr}, torch.device("cpu"))
    assert tuple(x.shape) == (6, 1, 4, 4) and tuple(y.shape) == (6, 1, 8, 8)
    torch.testing.assert_close(x[4], lr[1, :, :, :, 1])
    torch.testing.assert_close(y[2], hr[0, :, :, :, 2])
