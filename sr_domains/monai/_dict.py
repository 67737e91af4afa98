"""``meta_keys`` / ``meta_key_postfix`` of the dictionary transforms (MONAI's meta-dict mode).

With ``monai.data.set_track_meta(False)`` (or data that never were MetaTensors) the geometry
lives in a separate dictionary, ``d[meta_key]`` (default ``"<key>_meta_dict"``, as written by
``LoadImaged(image_only=False)``). The dictionary transforms then read the affine from it and
write an updated copy back, so ``SaveImaged(meta_keys=...)`` writes the right grid. A MetaTensor
always carries its own geometry; its meta dict, if any, is left alone, as MONAI's transforms do.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.utils import ensure_tuple, ensure_tuple_rep

from ..errors import ConfigError
from ._meta import copy_meta

DEFAULT_POSTFIX = "meta_dict"


def meta_key_tuples(
    keys: tuple[Hashable, ...], meta_keys: KeysCollection | None, meta_key_postfix: str
) -> tuple[tuple[Hashable | None, ...], tuple[str, ...]]:
    """MONAI's per-key ``(meta_keys, meta_key_postfix)`` tuples, checked."""
    mk = ensure_tuple_rep(None, len(keys)) if meta_keys is None else ensure_tuple(meta_keys)
    if len(mk) != len(keys):
        raise ConfigError(f"{len(keys)} keys but {len(mk)} meta_keys")
    if not isinstance(meta_key_postfix, str):
        raise ConfigError(f"meta_key_postfix must be a str, not {type(meta_key_postfix).__name__}")
    return tuple(mk), tuple(ensure_tuple_rep(meta_key_postfix, len(keys)))


def iter_meta_keys(
    key_iterator: Callable[..., Iterator[Any]],
    d: Mapping[Hashable, Any],
    meta_keys: tuple[Hashable | None, ...],
    postfixes: tuple[str, ...],
    *extra: Any,
) -> Iterator[tuple[Any, ...]]:
    """``(key, meta_key, *extra)`` for the keys present in ``d`` (``MapTransform.key_iterator``
    with the meta key resolved to ``meta_key or f"{key}_{postfix}"``)."""
    for key, mk, pf, *rest in key_iterator(d, meta_keys, postfixes, *extra):
        yield (key, mk or f"{key}_{pf}", *rest)


def apply_with_meta(
    fn: Callable[[Any], Any],
    d: dict[Hashable, Any],
    key: Hashable,
    meta_key: Hashable,
    out_key: Hashable | None = None,
    out_meta_key: Hashable | None = None,
) -> None:
    """``d[out_key] = fn(d[key])`` honouring the meta-dict mode.

    ``fn`` takes and returns a MetaTensor whatever ``get_track_meta()`` says. A MetaTensor input
    goes through as it is; other data borrow ``d[meta_key]`` when it exists (an updated copy is
    stored under ``out_meta_key``, default: the same key) and come back as MONAI's tracking
    setting says.
    """
    out_key = key if out_key is None else out_key
    x = d[key]
    meta = d.get(meta_key)
    if isinstance(x, MetaTensor) or not isinstance(meta, Mapping):
        y = fn(x)
        d[out_key] = y if get_track_meta() or not isinstance(y, MetaTensor) else y.as_tensor()
        return
    y = fn(MetaTensor(torch.as_tensor(x), meta=copy_meta(meta)))
    d[out_meta_key if out_meta_key is not None else meta_key] = copy_meta(y.meta)
    d[out_key] = y if get_track_meta() else y.as_tensor()


__all__ = ["DEFAULT_POSTFIX", "apply_with_meta", "iter_meta_keys", "meta_key_tuples"]
