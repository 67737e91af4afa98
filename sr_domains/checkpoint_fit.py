"""Whether a state dict fits a network: :func:`check_card_fits` (a card's network built on the
``meta`` device, at no cost, before any real allocation), :func:`load_state_strict` and
:func:`mismatch_report` (missing/unexpected keys and shape mismatches, readable).

Split from :mod:`sr_domains.checkpoint`, which re-exports the public names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from .errors import CheckpointError
from .models.base import ArchSpec, BaseSRConfig, SRModel


class _OversizeCard(Exception):
    """Raised inside a meta-device build once it far outgrows the file's tensors."""


class _SkipInit(TorchFunctionMode):
    """Skips in-place ops (weight init) on meta tensors: they only cost time, and torch's meta
    ``normal_`` imports ``torch._dynamo`` (seconds) on first use."""

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name.endswith("_") and not name.endswith("__"):
            first = next(
                (v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor)), None
            )
            if first is not None and first.is_meta:
                return first
        return func(*args, **kwargs)


def check_card_fits(
    path: Path, spec: ArchSpec, config: BaseSRConfig, state: dict[str, torch.Tensor]
) -> None:
    """Refuse a card whose network would not hold as many values as the file's tensors.

    The network is built on the ``meta`` device (no memory), and the build stops once it has
    more parameter tensors than the file or twice its values, so a card claiming a huge network
    (``n_feats=1000000``, ``n_blocks=10000000``) costs nothing. With equal counts the real
    network is no larger than the file, and :func:`load_state_strict` reports any key or shape
    difference.
    """
    held = sum(t.numel() for t in state.values())
    built = [0, 0]  # parameter tensors, values

    def count(_module: torch.nn.Module, _name: str, param: Any) -> None:
        if param is not None and param.device.type == "meta":
            built[0] += 1
            built[1] += param.numel()
            if built[0] > len(state) or built[1] > 2 * held:
                raise _OversizeCard

    handle = torch.nn.modules.module.register_module_parameter_registration_hook(count)
    try:
        with torch.device("meta"), _SkipInit():
            own = spec.model_cls(config).state_dict()
    except _OversizeCard:
        says = (
            f"over {len(state)} weight tensors"
            if built[0] > len(state)
            else f"over {2 * held:,} weight values"
        )
        raise CheckpointError(
            f"{path}: the model card says {spec.name} with {says} but the weights hold "
            f"{len(state)} tensors of {held:,} values"
        ) from None
    except (RuntimeError, NotImplementedError):  # a third-party network that needs real tensors
        return
    finally:
        handle.remove()
    total = sum(v.numel() for v in own.values())
    if total == held:
        return
    problems = mismatch_report(
        [k for k in own if k not in state],
        [k for k in state if k not in own],
        [
            f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
            for k, v in own.items()
            if k in state and state[k].shape != v.shape
        ],
        limit=3,
    )
    raise CheckpointError(
        f"{path}: the model card says {spec.name} with {total:,} weight values but the "
        f"weights hold {held:,} ({problems})"
    )


def load_state_strict(
    model: SRModel, state: dict[str, torch.Tensor], path: str | PathLike[str]
) -> None:
    """``model.load_state_dict(state, strict=True)``, raising :class:`CheckpointError` that
    lists missing and unexpected keys and shape mismatches (truncated) and names ``path``."""
    problems = state_mismatch(model.state_dict(), state)
    if problems:
        raise CheckpointError(f"{path}: weights do not match {model.arch}: {problems}")
    model.load_state_dict(state, strict=True)


def state_mismatch(
    own: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
    prefix: str = "",
    extra: Sequence[str] = (),
) -> str:
    """:func:`mismatch_report` of ``state`` against a network's ``own`` state dict: its
    missing and unexpected keys (``extra`` ones first) and shape mismatches, keys shown with
    ``prefix``; "" when they fit."""
    missing = [prefix + k for k in own if k not in state]
    unexpected = [*extra, *(prefix + k for k in state if k not in own)]
    shapes = [
        f"{prefix}{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    return mismatch_report(missing, unexpected, shapes)


def mismatch_report(
    missing: list[str], unexpected: list[str], shapes: list[str], limit: int = 8
) -> str:
    """Human-readable summary of key mismatches, empty when there are none."""
    parts = []
    for label, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shape mismatches (file vs model)", shapes),
    ):
        if items:
            shown = ", ".join(items[:limit])
            more = f", ... (+{len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{len(items)} {label}: {shown}{more}")
    return "; ".join(parts)


__all__ = ["check_card_fits", "load_state_strict", "mismatch_report", "state_mismatch"]
