"""Training data: HR patches in the model's normalized space, drawn deterministically.

>>> cfg = DataConfig(paths=("scenes/",), patch_size=96, profile="percentile:0.5,99.5")
>>> ds = PatchDataset(cfg, scale=4)                                        # doctest: +SKIP
>>> ds.set_epoch(3); item = ds[0]; item["hr"].shape, item["valid"].shape   # doctest: +SKIP
(torch.Size([1, 96, 96]), torch.Size([1, 96, 96]))

The dataset yields **HR patches only**; the trainer degrades them to LR on the fly. Inputs are
sniffed per file (:mod:`sr_domains.train.inputs`), opened with one intensity profile fitted per
file or volume (:mod:`sr_domains.train.sources`) and sampled uniformly among the positions whose
patch has at most ``max_invalid_fraction`` invalid pixels (:mod:`sr_domains.train.positions`).

Determinism: patch ``index`` of epoch ``e`` is drawn with ``numpy.random.default_rng([seed, e,
index])`` (file, plane, position, re-draws, flip/rotation), so it does not depend on worker
count, worker order or previous items. Call :meth:`PatchDataset.set_epoch` before each epoch's
DataLoader iterator is created (workers copy the dataset then; with ``persistent_workers`` the
epoch cannot change). See ``docs/training_data.md``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, InputFileError
from ..intensity import resolve_recipe
from .inputs import KINDS, find_inputs
from .positions import PositionTable, build_table
from .sources import ArrayCache, SkipInput, Source, SourceOptions, open_source

log = logging.getLogger(__name__)

WEIGHTINGS = ("file", "area")

#: What the data of each training-config section is for, in error messages.
_ROLES = {"data": "training", "val.data": "validation"}


@dataclass(frozen=True)
class DataConfig:
    """Training data section of a training config (strict YAML via ``config.from_dict``).

    Attributes:
        paths: files, folders (recursive) or globs; the kind is sniffed per file.
        corpus: a built-in offline corpus (:mod:`sr_domains.train.corpora`), used with ``paths``.
        kind: ``auto`` (sniff), ``geotiff``, ``nifti``, ``dicom`` or ``image`` (force a reader).
        bands: 1-based bands/channels of rasters and images (default: all but alpha).
        channels: required channel count; None = the corpus' count, else whatever the files
            have (all must agree). 1 turns 3-channel inputs into BT.601 luma; other mismatches
            are skipped with a warning.
        profile: intensity recipe (:mod:`sr_domains.intensity`), fitted once per file/volume.
        patch_size: HR patch size (a multiple of the scale).
        patches_per_epoch: dataset length.
        max_invalid_fraction: most invalid (nodata/NaN/masked/transparent) pixels in a patch.
        augment: random flips and 90-degree rotations (the dihedral group).
        slice_axes: in-plane axes of volumes (default: the two finest, ``default_axes``).
        min_std: re-draw patches whose valid values have a lower std (normalized units).
        seed: base seed (PatchDataset's ``seed`` overrides it).
        weighting: ``file`` (every file equally likely) or ``area`` (by patch positions).
        max_tries: draws per patch for ``min_std`` and raster validity re-checks.
        cache_mb: decoded images/volumes kept in memory per process (LRU).
    """

    paths: tuple[str, ...] = ()
    corpus: str | None = None
    kind: str = "auto"
    bands: tuple[int, ...] | None = None
    channels: int | None = None
    profile: str = "percentile:0.5,99.5"
    patch_size: int = 96
    patches_per_epoch: int = 1000
    max_invalid_fraction: float = 0.0
    augment: bool = True
    slice_axes: tuple[int, int] | None = None
    min_std: float = 0.0
    seed: int = 0
    weighting: str = "file"
    max_tries: int = 50
    cache_mb: int = 1024

    def __post_init__(self) -> None:
        paths = (self.paths,) if isinstance(self.paths, str) else tuple(map(str, self.paths))
        object.__setattr__(self, "paths", paths)
        if self.bands is not None:
            object.__setattr__(self, "bands", tuple(int(b) for b in self.bands))
        if self.slice_axes is not None:
            from ..medical.geometry import check_axes

            object.__setattr__(self, "slice_axes", check_axes(self.slice_axes))
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind {self.kind!r} is not one of {list(KINDS)}")
        if self.weighting not in WEIGHTINGS:
            problems.append(f"weighting {self.weighting!r} is not one of {list(WEIGHTINGS)}")
        if self.bands is not None and (not self.bands or min(self.bands) < 1):
            problems.append(f"bands {list(self.bands)} must be 1-based band numbers")
        if self.channels is not None and self.channels < 1:
            problems.append(f"channels must be >= 1, got {self.channels}")
        if self.patch_size < 4:
            problems.append(f"patch_size must be >= 4, got {self.patch_size}")
        if self.patches_per_epoch < 1:
            problems.append("patches_per_epoch must be >= 1")
        if not 0.0 <= self.max_invalid_fraction < 1.0:
            problems.append("max_invalid_fraction must be in [0, 1)")
        if self.min_std < 0 or self.seed < 0 or self.max_tries < 1 or self.cache_mb < 0:
            problems.append("min_std, seed and cache_mb must be >= 0 and max_tries >= 1")
        if problems:
            raise ConfigError("data: " + "; ".join(problems))
        resolve_recipe(self.profile)  # fail early on a bad recipe
        if self.corpus is not None:
            from .corpora import get_corpus

            get_corpus(self.corpus)

    def check(self, scale: int) -> None:
        """Raise ConfigError unless ``patch_size`` is a multiple of ``scale`` (LR >= 2 px)."""
        if scale < 1 or self.patch_size % scale or self.patch_size // scale < 2:
            raise ConfigError(
                f"data.patch_size {self.patch_size} must be a multiple of the scale {scale} "
                "(and at least twice it)"
            )


@dataclass(frozen=True)
class PatchInfo:
    """Where patch ``index`` came from: source index and name, plane, top-left ``(y, x)`` in
    the plane, rotation ``rot`` (x 90 degrees, applied first) and left-right ``flip``."""

    source: int
    name: str
    plane: int
    y: int
    x: int
    rot: int
    flip: bool
    tries: int


def _role(section: str) -> str:
    return _ROLES.get(section, "evaluation")


def _paths(config: DataConfig, section: str = "data") -> list[str]:
    out: list[str] = []
    if config.corpus:
        from .corpora import corpus_files

        out += [str(p) for p in corpus_files(config.corpus)]
    out += list(config.paths)
    if not out:
        off = " (or val.data: null for no validation)" if section == "val.data" else ""
        raise ConfigError(f"{section}: give paths and/or a corpus{off}")
    return out


def _channels(config: DataConfig) -> int | None:
    if config.channels is None and config.corpus:
        from .corpora import get_corpus

        return get_corpus(config.corpus).channels
    return config.channels


def iter_sources(
    config: DataConfig,
    cache: ArrayCache,
    skipped: list[tuple[str, str]],
    section: str = "data",
) -> Iterator[Source]:
    """Open every input of ``config`` in order; unusable ones are logged and appended to
    ``skipped`` as ``(name, reason)``. Channel counts must agree (ConfigError naming files).
    ``section`` is the config section ``config`` came from (``data``, ``val.data``), named by
    the errors."""
    paths = _paths(config, section)
    try:
        specs = find_inputs(paths, config.kind)
    except InputFileError as exc:  # which section's paths: data or val.data
        raise InputFileError(exc.path, f"{exc.problem} ({section}.paths)") from None
    if not specs:
        raise InputFileError(None, f"{section}: no {_role(section)} inputs found in {paths}")
    opts = SourceOptions(config.profile, config.bands, _channels(config), config.slice_axes)
    first: Source | None = None
    for spec in specs:
        try:
            src = open_source(spec, opts, cache)
        except SkipInput as exc:
            log.warning("%s: skipped: %s", spec.path, exc)
            skipped.append((spec.name, str(exc)))
            continue
        if first is not None and src.channels != first.channels:
            hint = (
                f"set {section}.channels (1 converts RGB to luma) or {section}.bands"
                if section in _ROLES
                else "choose the bands (CLI --bands)"
            )
            raise ConfigError(
                f"{spec.path} has {src.channels} channel(s) but {first.spec.path} has "
                f"{first.channels}; {hint}"
            )
        first = first or src
        yield src


def _no_usable(skipped: list[tuple[str, str]], section: str) -> InputFileError:
    listing = "; ".join(f"{n}: {r}" for n, r in skipped[:10])
    more = f" (and {len(skipped) - 10} more)" if len(skipped) > 10 else ""
    return InputFileError(None, f"{section}: no usable {_role(section)} files: {listing}{more}")


class PatchDataset(torch.utils.data.Dataset):
    """Deterministic HR patches (see module docs).

    Items: ``{"hr": float32 (C, P, P) normalized, "valid": bool (1, P, P)}``; invalid pixels
    of ``hr`` hold the file's mean valid value (normalized) so degradations stay finite.

    Args:
        config: the data config.
        scale: the model's scale (``patch_size`` must be a multiple).
        seed: overrides ``config.seed``.
    """

    def __init__(self, config: DataConfig, *, scale: int, seed: int | None = None) -> None:
        config.check(scale)
        self.config, self.scale = config, int(scale)
        self.seed = config.seed if seed is None else int(seed)
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        self.epoch = 0
        self._cache = ArrayCache(config.cache_mb * 2**20)
        skipped: list[tuple[str, str]] = []
        sources: list[Source] = []
        tables: list[PositionTable] = []
        for src in iter_sources(config, self._cache, skipped, "data"):
            table = build_table(src, config.patch_size, config.max_invalid_fraction, self._cache)
            if isinstance(table, str):
                log.warning("%s: skipped: %s", src.spec.path, table)
                skipped.append((src.name, table))
                continue
            sources.append(src)
            tables.append(table)
        if not sources:
            raise _no_usable(skipped, "data")
        self.sources: tuple[Source, ...] = tuple(sources)
        self.skipped: tuple[tuple[str, str], ...] = tuple(skipped)
        self._tables = tables
        self._area_cum = np.cumsum([t.total for t in tables])

    def __len__(self) -> int:
        return self.config.patches_per_epoch

    @property
    def channels(self) -> int:
        return self.sources[0].channels

    def set_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch``'s patches (call before creating the epoch's iterator)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def _pick(self, rng: np.random.Generator) -> int:
        if self.config.weighting == "file":
            return int(rng.integers(len(self.sources)))
        return int(np.searchsorted(self._area_cum, rng.integers(self._area_cum[-1]), "right"))

    def _generate(self, index: int) -> tuple[PatchInfo, np.ndarray, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"patch index {index} out of range 0..{len(self) - 1}")
        cfg, p = self.config, self.config.patch_size
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        s = self._pick(rng)
        src, table = self.sources[s], self._tables[s]
        best: tuple[float, int, int, int, int, np.ndarray, np.ndarray] | None = None
        for tries in range(1, cfg.max_tries + 1):
            plane, y, x = table.draw(rng)
            hr, valid = src.read(plane, y, x, p, p, self._cache)
            if 1.0 - valid.mean() > cfg.max_invalid_fraction + 1e-9:
                continue  # only on subsampled raster grids: the exact check decides
            std = float(hr[:, valid].std()) if cfg.min_std > 0 else math.inf
            if best is None or std > best[0]:
                best = (std, tries, plane, y, x, hr, valid)
            if std >= cfg.min_std:
                break
        if best is None:
            raise InputFileError(
                src.spec.path,
                f"no {p}x{p} patch with at most {cfg.max_invalid_fraction:.0%} invalid pixels "
                f"in {cfg.max_tries} draws; raise max_invalid_fraction or max_tries",
            )
        _, tries, plane, y, x, hr, valid = best
        rot, flip = 0, False
        if cfg.augment:
            rot, flip = int(rng.integers(4)), bool(rng.integers(2))
            hr, valid = _dihedral(hr, rot, flip), _dihedral(valid[None], rot, flip)[0]
        return PatchInfo(s, src.name, plane, y, x, rot, flip, tries), hr, valid

    def patch_info(self, index: int) -> PatchInfo:
        """Where item ``index`` of the current epoch comes from (same draws as ``[index]``)."""
        return self._generate(index)[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        _, hr, valid = self._generate(index)
        return {
            "hr": torch.from_numpy(np.ascontiguousarray(hr, dtype=np.float32)),
            "valid": torch.from_numpy(np.ascontiguousarray(valid[None])),
        }

    def describe(self) -> str:
        """One paragraph for the model card's ``training_data``."""
        cfg = self.config
        kinds = Counter(s.spec.kind for s in self.sources)
        listed = ", ".join(s.summary() for s in self.sources[:12])
        if len(self.sources) > 12:
            listed += f" and {len(self.sources) - 12} more"
        corpus = f" (corpus {cfg.corpus!r})" if cfg.corpus else ""
        luma = " (RGB converted to BT.601 luma)" if any(s.note for s in self.sources) else ""
        text = (
            f"{len(self.sources)} input(s){corpus}: "
            + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
            + f" - {listed}. Intensity profile {cfg.profile!r} fitted once per file on its "
            f"valid pixels; {self.channels} channel(s){luma}. HR patches {cfg.patch_size}x"
            f"{cfg.patch_size} for x{self.scale}, {cfg.patches_per_epoch} per epoch, "
            + ("every file equally likely" if cfg.weighting == "file" else "drawn by area")
            + (", dihedral augmentation" if cfg.augment else ", no augmentation")
            + f", at most {cfg.max_invalid_fraction:.0%} invalid pixels per patch"
            + (f", min std {cfg.min_std:g}" if cfg.min_std else "")
            + f", seed {self.seed}."
        )
        if self.skipped:
            text += " Skipped: " + "; ".join(f"{n} ({r})" for n, r in self.skipped[:5])
            text += f" and {len(self.skipped) - 5} more." if len(self.skipped) > 5 else "."
        return text


def _dihedral(a: np.ndarray, rot: int, flip: bool) -> np.ndarray:
    out = np.rot90(a, rot, axes=(1, 2))
    return out[:, :, ::-1] if flip else out


def load_images(
    config: DataConfig,
    *,
    max_pixels: int = 1024 * 1024,
    multiple: int = 1,
    slices: tuple[float, ...] = (0.25, 0.5, 0.75),
    with_profile: bool = False,
    section: str = "images",
) -> list[tuple[Any, ...]]:
    """Whole evaluation images ``(name, hr (C, H, W) float32 normalized, valid (1, H, W) or
    None when all valid)`` with the same sniffing, channels and per-file profile as training;
    ``with_profile`` appends each file's fitted :class:`~sr_domains.intensity.IntensityProfile`
    (to go back to stored units, e.g. for SAM/ERGAS).

    Images and rasters give one image each (a centred crop when larger than ``max_pixels``,
    keeping the aspect ratio). Volumes give the slices at the ``slices`` fractions of the slice
    axis (first time point; duplicates dropped), named ``file:slice=K``. Sizes are cropped
    (centred) to multiples of ``multiple`` (e.g. the scale). Errors name ``section``, the
    config section ``config`` came from (``val.data`` for the validation images of a training
    config; default ``images``, worded as evaluation data).
    """
    if max_pixels < 1 or multiple < 1:
        raise ConfigError("max_pixels and multiple must be >= 1")
    cache = ArrayCache(0)  # only the file being read stays in memory
    out: list[tuple[Any, ...]] = []
    skipped: list[tuple[str, str]] = []
    for src in iter_sources(config, cache, skipped, section):
        h, w = src.shape
        r = min(1.0, math.sqrt(max_pixels / (h * w)))
        ch, cw = math.floor(h * r), math.floor(w * r)
        ch, cw = ch - ch % multiple, cw - cw % multiple
        if ch == 0 or cw == 0:
            log.warning("%s: skipped: smaller than %d pixels", src.spec.path, multiple)
            skipped.append((src.name, f"smaller than {multiple} pixels"))
            continue
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        if src.axes is None:
            planes = [(0, src.name)]
        else:
            ks = sorted({min(src.n_slices - 1, round(q * (src.n_slices - 1))) for q in slices})
            planes = [(k, f"{src.name}:slice={k}") for k in ks]
        for plane, name in planes:
            hr, valid = src.read(plane, y0, x0, ch, cw, cache)
            item = (name, hr.astype(np.float32), None if valid.all() else valid[None])
            out.append((*item, src.profile) if with_profile else item)
    if not out:
        raise _no_usable(skipped, section)
    log.info("loaded %d evaluation image(s)", len(out))
    return out


__all__ = ["DataConfig", "PatchDataset", "PatchInfo", "iter_sources", "load_images"]
