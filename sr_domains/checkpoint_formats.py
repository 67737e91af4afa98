"""Key layouts of public super-resolution checkpoints and their mapping onto sr_domains models.

Each :class:`Layout` says how to recognise a layout (keys that must be present), how to read the
architecture's hyper-parameters from tensor shapes, and how every sr_domains state-dict key is
named in the file. Loading is strict: the file must contain exactly the mapped keys (plus the
mean-shift tensors of the official layouts), with matching shapes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import CheckpointError
from .models.base import BaseSRConfig

log = logging.getLogger(__name__)

State = Mapping[str, torch.Tensor]
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)
Infer = Callable[[State, dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]


@dataclass(frozen=True)
class Layout:
    """One public checkpoint layout."""

    name: str
    arch: str
    required: tuple[str, ...]
    infer: Infer
    """``(state, user options) -> (detected config, default config)``."""
    rules: Callable[[BaseSRConfig], list[tuple[str, str]]]
    """Regex substitutions turning an sr_domains key into the file's key (first match wins)."""
    means: Callable[[State, BaseSRConfig], tuple[torch.Tensor, torch.Tensor] | None] = field(
        default=lambda state, cfg: None
    )
    extra: tuple[str, ...] = ()
    """File keys consumed by ``means`` rather than mapped."""
    note: str = ""
    """Reported (logged and shown by ``models --inspect``) whenever this layout is used."""


def _count(state: State, pattern: str) -> int:
    found = [int(m.group(1)) for k in state if (m := re.match(pattern, k))]
    return max(found) + 1 if found else 0


def _shape(state: State, key: str) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointError(f"missing key {key!r}, needed to infer the architecture")
    return tuple(state[key].shape)


def _shuffle_scale(state: State, prefix: str, n_feats: int) -> int:
    """Scale of an EDSR-style pixel-shuffle upsampler (``prefix.0``, ``prefix.2`` convs)."""
    ratios = [
        state[f"{prefix}.{i}.weight"].shape[0] // n_feats
        for i in (0, 2, 4)
        if f"{prefix}.{i}.weight" in state
    ]
    scale = {(4,): 2, (9,): 3, (4, 4): 4}.get(tuple(ratios))
    if scale is None:
        raise CheckpointError(f"unsupported upsampler {prefix}: channel ratios {ratios}")
    return scale


def _official_means(state: State, cfg: BaseSRConfig) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Means from EDSR-PyTorch's MeanShift convs (weight eye/std, bias sign*range*mean/std)."""
    if "sub_mean.bias" not in state and "add_mean.bias" not in state:
        return None
    out = []
    for name, sign in (("sub_mean", -1.0), ("add_mean", 1.0)):
        w = state.get(f"{name}.weight")
        b = state.get(f"{name}.bias")
        if w is None or b is None or w.numel() != 9:
            raise CheckpointError(f"incomplete or non-RGB mean shift {name!r}")
        w = w.reshape(3, 3).double()
        if not torch.allclose(w, torch.eye(3, dtype=w.dtype), atol=1e-6):
            raise CheckpointError(f"{name}: only rgb_std = 1 is supported")
        out.append((sign * b.double() / cfg.pixel_range).float())
    return out[0], out[1]


def _basicsr_means(state: State, cfg: BaseSRConfig) -> tuple[torch.Tensor, torch.Tensor] | None:
    """BasicSR EDSR/RCAN subtract the DIV2K mean (a plain attribute, not in the state dict)."""
    if cfg.in_channels != 3 or cfg.n_out != 3:
        log.warning(
            "BasicSR mean shift assumes RGB; using a zero mean for %d bands", cfg.in_channels
        )
        return None
    mean = torch.tensor(DIV2K_MEAN)
    return mean, mean.clone()


# -- EDSR / RCAN ---------------------------------------------------------------------------------
def _shuffle_net(state: State, first: str, last: str, up: str) -> dict[str, Any]:
    n_feats, in_ch = _shape(state, first)[:2]
    scale = _shuffle_scale(state, up, n_feats)
    return {
        "in_channels": in_ch,
        "out_channels": _shape(state, last)[0],
        "n_feats": n_feats,
        "scale": scale,
    }


def _pixel_range(state: State) -> float:
    # rgb_range is not stored; BasicSR always uses 255. A MeanShift bias of ~100 means 255.
    bias = state.get("sub_mean.bias")
    return 1.0 if bias is not None and bias.abs().max() < 2 else 255.0


def _edsr_infer(first: str, last: str, up: str, blocks: str) -> Infer:
    def infer(state: State, user: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        found = _shuffle_net(state, first, last, up)
        found["n_blocks"] = _count(state, blocks)
        big = (found["n_blocks"], found["n_feats"]) == (32, 256)  # the paper's res_scale 0.1
        return found, {"res_scale": 0.1 if big else 1.0, "pixel_range": _pixel_range(state)}

    return infer


def _rcan_infer(first: str, last: str, up: str, groups: str, blocks: str, ca: str) -> Infer:
    def infer(state: State, user: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        found = _shuffle_net(state, first, last, up)
        found["reduction"] = found["n_feats"] // _shape(state, ca)[0]
        found["n_resgroups"] = _count(state, groups)
        found["n_resblocks"] = _count(state, blocks)
        return found, {"pixel_range": _pixel_range(state)}

    return infer


def _edsr_official_rules(cfg: Any) -> list[tuple[str, str]]:
    return [
        (r"^conv_first\.", "head.0."),
        (r"^body\.(\d+)\.conv1\.", r"body.\1.body.0."),
        (r"^body\.(\d+)\.conv2\.", r"body.\1.body.2."),
        (r"^conv_after_body\.", f"body.{cfg.n_blocks}."),
        (r"^upsample\.", "tail.0."),
        (r"^conv_last\.", "tail.1."),
    ]


def _rcan_official_rules(cfg: Any) -> list[tuple[str, str]]:
    g = r"^body\.(\d+)\.blocks\.(\d+)\."
    return [
        (r"^conv_first\.", "head.0."),
        (g + r"conv1\.", r"body.\1.body.\2.body.0."),
        (g + r"conv2\.", r"body.\1.body.\2.body.2."),
        (g + r"ca\.down\.", r"body.\1.body.\2.body.3.conv_du.0."),
        (g + r"ca\.up\.", r"body.\1.body.\2.body.3.conv_du.2."),
        (r"^body\.(\d+)\.conv\.", rf"body.\1.body.{cfg.n_resblocks}."),
        (r"^conv_after_body\.", f"body.{cfg.n_resgroups}."),
        (r"^upsample\.", "tail.0."),
        (r"^conv_last\.", "tail.1."),
    ]


def _rcan_basicsr_rules(cfg: Any) -> list[tuple[str, str]]:
    g = r"^body\.(\d+)\.blocks\.(\d+)\."
    return [
        (g + r"conv1\.", r"body.\1.residual_group.\2.rcab.0."),
        (g + r"conv2\.", r"body.\1.residual_group.\2.rcab.2."),
        (g + r"ca\.down\.", r"body.\1.residual_group.\2.rcab.3.attention.1."),
        (g + r"ca\.up\.", r"body.\1.residual_group.\2.rcab.3.attention.3."),
    ]


# -- RRDBNet -------------------------------------------------------------------------------------
def _rrdb_config(
    first: tuple[int, ...], last: tuple[int, ...], grow: int, n_block: int, n_up: int, user: dict
) -> tuple[dict[str, Any], dict[str, Any]]:
    first_in, out_ch = first[1], last[0]
    unshuffle = user.get("pixel_unshuffle")
    if unshuffle is None:
        if user.get("in_channels") is not None:
            unshuffle = user["in_channels"] * 4 == first_in
        else:  # Real-ESRGAN x2: RGB pixel-unshuffled to 12 channels
            unshuffle = first_in == 4 * out_ch
    if first_in == 16 * out_ch and user.get("in_channels") is None:
        raise CheckpointError("x1 RRDBNet (pixel-unshuffle by 4) is not supported")
    if unshuffle and (n_up != 2 or first_in % 4):
        raise CheckpointError(f"pixel-unshuffle RRDBNet needs 2 upsampling convs, has {n_up}")
    found = {
        "in_channels": first_in // 4 if unshuffle else first_in,
        "out_channels": out_ch,
        "num_feat": first[0],
        "num_grow_ch": grow,
        "num_block": n_block,
        "pixel_unshuffle": bool(unshuffle),
    }
    defaults: dict[str, Any] = {}
    if n_up == 2:
        found["scale"] = 2 if unshuffle else 4
    elif n_up == 1:
        defaults["scale"] = 2  # x2 and x3 share one upsampling conv; pass scale=3 for x3
    else:
        raise CheckpointError(f"unsupported number of upsampling convs: {n_up}")
    return found, defaults


def _n_up(state: State, name: str) -> int:
    return sum(any(k.startswith(f"{name}{i}.") for k in state) for i in (1, 2))


def _rrdb_basicsr(state: State, user: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return _rrdb_config(
        _shape(state, "conv_first.weight"),
        _shape(state, "conv_last.weight"),
        _shape(state, "body.0.rdb1.conv1.weight")[0],
        _count(state, r"^body\.(\d+)\.rdb"),
        _n_up(state, "conv_up"),
        user,
    )


def _rrdb_bsrgan(state: State, user: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return _rrdb_config(
        _shape(state, "conv_first.weight"),
        _shape(state, "conv_last.weight"),
        _shape(state, "RRDB_trunk.0.RDB1.conv1.weight")[0],
        _count(state, r"^RRDB_trunk\.(\d+)\."),
        _n_up(state, "upconv"),
        user,
    )


def _rrdb_bsrgan_rules(cfg: Any) -> list[tuple[str, str]]:
    return [
        (r"^body\.(\d+)\.rdb(\d)\.", r"RRDB_trunk.\1.RDB\2."),
        (r"^conv_body\.", "trunk_conv."),
        (r"^conv_up(\d)\.", r"upconv\1."),
        (r"^conv_hr\.", "HRconv."),
    ]


def _rrdb_old(state: State, user: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    last = _count(state, r"^model\.(\d+)\.weight") - 1  # model.{3k}: up convs, then hr, last
    return _rrdb_config(
        _shape(state, "model.0.weight"),
        _shape(state, f"model.{last}.weight"),
        _shape(state, "model.1.sub.0.RDB1.conv1.0.weight")[0],
        _count(state, r"^model\.1\.sub\.(\d+)\.RDB"),
        (last - 4) // 3,
        user,
    )


def _rrdb_old_rules(cfg: Any) -> list[tuple[str, str]]:
    n_up = 2 if cfg.pixel_unshuffle or cfg.scale == 4 else 1
    return [
        (r"^conv_first\.", "model.0."),
        (r"^body\.(\d+)\.rdb(\d)\.conv(\d)\.", r"model.1.sub.\1.RDB\2.conv\3.0."),
        (r"^conv_body\.", f"model.1.sub.{cfg.num_block}."),
        (r"^conv_up1\.", "model.3."),
        (r"^conv_up2\.", "model.6."),
        (r"^conv_hr\.", f"model.{3 * n_up + 2}."),
        (r"^conv_last\.", f"model.{3 * n_up + 4}."),
    ]


# -- SRCNN / VDSR-style (our srcnn key names) ----------------------------------------------------
def _srcnn(state: State, user: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    shapes = [_shape(state, f"conv{i}.weight") for i in (1, 2, 3)]
    if any(len(s) != 4 or s[2] != s[3] or s[2] % 2 == 0 for s in shapes):
        raise CheckpointError(f"SRCNN convolutions must be square and odd, got {shapes}")
    found = {
        "in_channels": shapes[0][1],
        "out_channels": shapes[2][0],
        "features": (shapes[0][0], shapes[1][0]),
        "kernels": tuple(s[2] for s in shapes),
    }
    # SRCNN runs on a bicubic-upsampled input: the scale is not in the weights, nor is the
    # VDSR-style global residual (arch="srcnn-residual").
    return found, {"scale": 2, "residual": False}


_OFFICIAL_EXTRA = ("sub_mean.weight", "sub_mean.bias", "add_mean.weight", "add_mean.bias")
LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "official RCAN",
        "rcan",
        ("head.0.weight", "tail.1.weight", "body.0.body.0.body.3.conv_du.0.weight"),
        _rcan_infer(
            "head.0.weight",
            "tail.1.weight",
            "tail.0",
            r"^body\.(\d+)\.body\.\d+\.body\.",
            r"^body\.0\.body\.(\d+)\.body\.",
            "body.0.body.0.body.3.conv_du.0.weight",
        ),
        _rcan_official_rules,
        _official_means,
        _OFFICIAL_EXTRA,
    ),
    Layout(
        "official EDSR",
        "edsr",
        ("head.0.weight", "tail.1.weight", "body.0.body.0.weight"),
        _edsr_infer("head.0.weight", "tail.1.weight", "tail.0", r"^body\.(\d+)\.body\."),
        _edsr_official_rules,
        _official_means,
        _OFFICIAL_EXTRA,
    ),
    Layout(
        "BasicSR RRDBNet",
        "rrdb",
        ("conv_first.weight", "body.0.rdb1.conv1.weight"),
        _rrdb_basicsr,
        lambda cfg: [],
    ),
    Layout(
        "BSRGAN RRDBNet",
        "rrdb",
        ("conv_first.weight", "RRDB_trunk.0.RDB1.conv1.weight"),
        _rrdb_bsrgan,
        _rrdb_bsrgan_rules,
    ),
    Layout(
        "old ESRGAN RRDBNet",
        "rrdb",
        ("model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight"),
        _rrdb_old,
        _rrdb_old_rules,
    ),
    Layout(
        "BasicSR RCAN",
        "rcan",
        ("conv_first.weight", "body.0.residual_group.0.rcab.0.weight"),
        _rcan_infer(
            "conv_first.weight",
            "conv_last.weight",
            "upsample",
            r"^body\.(\d+)\.",
            r"^body\.0\.residual_group\.(\d+)\.",
            "body.0.residual_group.0.rcab.3.attention.1.weight",
        ),
        _rcan_basicsr_rules,
        _basicsr_means,
    ),
    Layout(
        "plain SRCNN",
        "srcnn",
        ("conv1.weight", "conv2.weight", "conv3.weight"),
        _srcnn,
        lambda cfg: [],
        note="no norm_mean_in/norm_mean_out in the file: zero means assumed (input in [0, 1])",
    ),
    Layout(
        "BasicSR EDSR",
        "edsr",
        ("conv_first.weight", "body.0.conv1.weight", "conv_after_body.weight"),
        _edsr_infer("conv_first.weight", "conv_last.weight", "upsample", r"^body\.(\d+)\."),
        lambda cfg: [],
        _basicsr_means,
    ),
)


def detect_layout(state: State) -> Layout | None:
    """The first :data:`LAYOUTS` entry whose required keys are all present, or None."""
    return next((lay for lay in LAYOUTS if all(k in state for k in lay.required)), None)


def source_key(key: str, rules: list[tuple[str, str]]) -> str:
    """Apply the first matching ``(pattern, replacement)`` rule to an sr_domains key."""
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


__all__ = ["DIV2K_MEAN", "LAYOUTS", "Layout", "detect_layout", "source_key"]
