"""The *recipe* of a run: the options besides weights, scale, bands and mode that change what
an output holds (intensity profile, value rules, ``--dtype``/``--nodata``/``--cog``/``--co``,
the ``--adapt`` settings, the ``--isotropic`` fit), as canonical JSON of those that differ from
their defaults. Outputs record it (:class:`sr_domains.made_with.Made`); a resumed batch compares
it with its own (:meth:`sr_domains.made_with.Requested.differs`). Options that change only how
an output is computed (tile, batch size, device, threads, backend) are not part of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .options import AdaptOptions, InternalOptions, IsotropicOptions, UpscaleOptions
    from .value_domain import ValueOptions

#: AdaptOptions / InternalOptions fields that do not change the output (where files go).
_NOT_RECIPE = {"save_model", "overwrite"}


def recipe(
    *,
    profile: object = None,
    values: ValueOptions | None = None,
    adapt: AdaptOptions | None = None,
    nodata: float | None = None,
    dtype: str | None = None,
    cog: bool = False,
    creation_options: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    isotropic: IsotropicOptions | None = None,
    internal: InternalOptions | None = None,
    start: str | os.PathLike[str] | None = None,
) -> str:
    """The options besides weights, scale, bands and mode that change what an output holds,
    as canonical JSON of those that differ from their defaults (``"{}"``: all defaults).
    A writer records it and a rerun computes it from its own options; :meth:`Requested.
    differs` compares the two. ``profile``: the recipe text (a fitted profile object counts as
    ``"fitted ..."``); ``start``: the weights an ``--isotropic`` fit starts from."""
    out: dict[str, Any] = {}
    if profile is not None:
        out["profile"] = profile if isinstance(profile, str) else f"fitted {_profile_name(profile)}"
    if values is not None:
        out.update(_changed(values, "", set()))
    if adapt is not None:
        out.update(_changed(adapt, "adapt_", _NOT_RECIPE))
    if nodata is not None:
        out["nodata"] = float(nodata)
    if dtype is not None:
        out["dtype"] = str(dtype)
    if cog:
        out["cog"] = True
    co = dict(creation_options.items() if isinstance(creation_options, Mapping) else
              creation_options or ())  # fmt: skip
    if co:
        out["co"] = sorted([str(k).upper(), str(v)] for k, v in co.items())
    if isotropic is not None:
        out.update(_changed(isotropic, "", {"target_spacing", "fusion"}))  # in Made itself
    if internal is not None:
        out.update(_changed(internal, "fit_", _NOT_RECIPE))
    if start is not None:
        out["start"] = Path(start).name
    return json.dumps(out, sort_keys=True, separators=(",", ":"), default=str)


def recipe_of(options: UpscaleOptions, domain: str, profile: object = None) -> str:
    """:func:`recipe` of the options that apply to an input of ``domain``: the GeoTIFF ones
    to a GeoTIFF, ``--isotropic`` and its fit (no ``--adapt``) to a volume; ``profile``: a
    fitted profile used instead of ``options.profile``."""
    geo = domain == "geotiff"
    iso = None if geo else options.isotropic
    return recipe(
        profile=profile if profile is not None else options.profile,
        values=options.values,
        adapt=options.adapt if iso is None else None,
        nodata=options.nodata if geo else None,
        dtype=options.dtype if geo else None,
        cog=options.cog and geo,
        creation_options=options.creation_options if geo else None,
        isotropic=iso,
        internal=options.internal if iso is not None else None,
        start=options.weights if iso is not None else None,
    )


def for_source(recipe_json: str, source_dtype: str) -> str:
    """``recipe_json`` as it applies to a GeoTIFF source of ``source_dtype``: a ``--dtype``
    equal to the input's own type is the default (the same output), so it is left out, and a
    rerun with or without it resumes (also over outputs that recorded it)."""
    try:
        out = json.loads(recipe_json)
    except ValueError:
        return recipe_json
    if not isinstance(out, dict) or out.get("dtype") != source_dtype:
        return recipe_json
    del out["dtype"]
    return json.dumps(out, sort_keys=True, separators=(",", ":"), default=str)


def _profile_name(profile: object) -> str:
    return str(getattr(profile, "recipe", type(profile).__name__))


def _changed(options: Any, prefix: str, skip: set[str]) -> dict[str, Any]:
    """The fields of a dataclass of options that differ from the class's defaults."""
    default = type(options)()
    return {
        prefix + f.name: _plain(getattr(options, f.name))
        for f in fields(options)
        if f.name not in skip and getattr(options, f.name) != getattr(default, f.name)
    }


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return Path(value).name
    return value


def recipe_diff(made: str, asked: str) -> str:
    """``"clamp false, now true; dtype float32, now default"``: how two recipes differ."""
    try:
        had, want = json.loads(made), json.loads(asked)
    except ValueError:
        return "options not readable"
    keys = sorted(set(had) | set(want))
    parts = [
        f"{k} {_shown(had.get(k))}, now {_shown(want.get(k))}"
        for k in keys
        if had.get(k) != want.get(k)
    ]
    return "; ".join(parts)


def _shown(value: Any) -> str:
    if value is None:
        return "default"
    return json.dumps(value) if not isinstance(value, str) else value


__all__ = ["for_source", "recipe", "recipe_diff", "recipe_of"]
