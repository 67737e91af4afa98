"""Checkpoints built with spandrel's own architecture classes (random weights, the official key
layouts those classes write), for the zoo tests. Small widths keep the CPU tests fast."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from sr_domains.zoo import import_spandrel, spandrel_available

if not spandrel_available():  # pragma: no cover - the dev extra installs spandrel
    pytest.skip("spandrel (sr-domains[zoo]) is not installed", allow_module_level=True)

import_spandrel()  # works beside a torchvision whose C++ operators cannot load

from spandrel.architectures.Compact import Compact  # noqa: E402
from spandrel.architectures.ESRGAN import ESRGAN  # noqa: E402
from spandrel.architectures.OmniSR import OmniSR  # noqa: E402
from spandrel.architectures.RCAN import RCAN  # noqa: E402
from spandrel.architectures.SPAN import SPAN  # noqa: E402
from spandrel.architectures.SwinIR import SwinIR  # noqa: E402


def compact(scale: int = 4, channels: int = 3) -> torch.nn.Module:
    """Real-ESRGAN's SRVGGNetCompact (realesr-animevideov3 / general-x4v3 layout)."""
    return Compact(num_in_ch=channels, num_out_ch=channels, num_feat=16, num_conv=4, upscale=scale)


def swinir_small(scale: int = 2) -> torch.nn.Module:
    """SwinIR, lightweight pixelshuffledirect upsampler, a small depth."""
    return SwinIR(
        img_size=32,
        in_chans=3,
        embed_dim=8,
        depths=[2],
        num_heads=[2],
        window_size=8,
        mlp_ratio=1.0,
        upscale=scale,
        upsampler="pixelshuffledirect",
        resi_connection="1conv",
    )


def span(scale: int = 2) -> torch.nn.Module:
    return SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=scale)


def omnisr(scale: int = 2) -> torch.nn.Module:
    return OmniSR(
        num_in_ch=3, num_out_ch=3, num_feat=16, block_num=1, window_size=8, res_num=1,
        up_scale=scale,
    )  # fmt: skip


def rrdb_x1() -> torch.nn.Module:
    """ESRGAN x1: pixel-unshuffle by 4, then two x2 upsampling convs (community 1x models)."""
    return ESRGAN(in_nc=48, out_nc=3, num_filters=8, num_blocks=1, scale=4, shuffle_factor=4)


def rrdb_x8() -> torch.nn.Module:
    """ESRGAN x8: three upsampling convs."""
    return ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=8)


def esrgan_plus() -> torch.nn.Module:
    """ESRGAN+ (nESRGAN+): RRDBs with an extra conv1x1 per dense block."""
    return ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4, plus=True)


def rcan_unshuffle() -> torch.nn.Module:
    """RCAN with ``unshuffle_mod`` (x2 by pixel-unshuffle 2 then x4)."""
    return RCAN(scale=2, n_resgroups=1, n_resblocks=2, n_feats=8, reduction=4, unshuffle_mod=True)


#: name -> (builder, scale, spandrel id)
MODELS: dict[str, tuple[Callable[[], torch.nn.Module], int, str]] = {
    "compact": (compact, 4, "Compact"),
    "swinir": (swinir_small, 2, "SwinIR"),
    "span": (span, 2, "SPAN"),
    "omnisr": (omnisr, 2, "OmniSR"),
    "rrdb_x1": (rrdb_x1, 1, "ESRGAN"),
    "rrdb_x8": (rrdb_x8, 8, "ESRGAN"),
    "esrgan_plus": (esrgan_plus, 4, "ESRGAN"),
    "rcan_unshuffle": (rcan_unshuffle, 2, "RCAN"),
}


def save(name: str, folder: Path, seed: int = 0, wrap: str | None = None) -> Path:
    """Build ``MODELS[name]`` with seeded random weights and ``torch.save`` its state dict
    (inside ``{wrap: ...}`` when given, as BasicSR's ``params_ema`` files are)."""
    torch.manual_seed(seed)
    state = MODELS[name][0]().state_dict()
    path = folder / f"{name}.pth"
    torch.save({wrap: state} if wrap else state, path)
    return path


def image(h: int, w: int, channels: int = 3) -> torch.Tensor:
    """A smooth image in [0.1, 0.9] with edges: ``(1, C, h, w)``."""
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    bands = [
        0.5 + 0.3 * torch.sin(xx / (5 + c) + c) * torch.cos(yy / (7 + c) - c)
        + 0.1 * ((xx + 2 * yy + 10 * c) % 23 < 11).float()
        for c in range(channels)
    ]  # fmt: skip
    return torch.stack(bands)[None]
