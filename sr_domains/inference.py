"""Run a model over arrays of any size: tiling, bands, nodata, intensity profile, value rules.

Everything goes through :class:`Upscaler`; the network itself runs in a
:class:`~sr_domains.runtime.NetworkRunner` (device, AMP, memory format, backend).
:meth:`Upscaler.stream` reads LR windows through a callback and yields finished HR row blocks,
so writers can work with bounded memory; :func:`sr_domains.array_api.upscale_array` is the
in-memory convenience built on the same path, so tiled and whole-image results come from
identical code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import numpy as np
import torch

from .band_modes import auto_spectral, band_mode, band_runner, out_channels
from .engine_config import (
    MAX_AUTO_MARGIN,
    RAMP,
    EngineSettings,
    Tiling,
    resolve_amp,
    resolve_device,
    resolve_tiling,
    settings_with,
    torch_threads,
)
from .errors import ConfigError
from .intensity import IntensityProfile, profile_from_any
from .model_label import model_label
from .models.base import SRModel
from .options import DEFAULT_TILE, check_tile, whole
from .runtime import NetworkRunner
from .tiling import TilePlan, make_plan, stream_tiles
from .value_domain import ValueRules
from .window_reader import RawReadFn, WindowReader
from .window_reader import valid_mean as _valid_mean

log = logging.getLogger(__name__)
#: True while :meth:`Upscaler.with_model` builds a copy whose tiling note was already said
_TILING_SAID: ContextVar[bool] = ContextVar("_TILING_SAID", default=False)


class Upscaler:
    """A model bound to a device, precision, backend and tiling. Reusable across many images.

    Args:
        model: an :class:`~sr_domains.models.SRModel` (moved to ``device``, set to eval).
        tile: LR window size; default: the largest window whose forward pass fits the memory
            budget (:mod:`sr_domains.memory`), so most images run as one window. Windows never
            exceed the image.
        overlap: LR pixels shared by adjacent windows (default: from the receptive field).
        batch_size: windows per forward pass (default 4 on CUDA, 1 elsewhere).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``...
        amp: ``"auto"``, ``"off"``, ``"fp16"``, ``"bf16"`` (PyTorch backend only).
        channels_last: channels-last memory format (default: on CUDA, and on the CPU for the
            architectures where it is faster, ``SRModel.cpu_channels_last``).
        progress: show a tqdm progress bar over windows.
        backend: ``"torch"`` or ``"onnxruntime"`` (:mod:`sr_domains.onnx_backend`).
        threads: CPU threads of the network while this engine runs (default: the current
            ``torch.get_num_threads()``).
        max_memory: memory budget of one forward batch, e.g. ``"2G"`` (default: see
            :func:`sr_domains.memory.default_budget`); only used to choose the default tile.

    ``backend``, ``threads`` and ``max_memory`` left as None come from
    :func:`~sr_domains.engine_config.engine_settings` (how the CLI reaches domain APIs).
    """

    def __init__(
        self,
        model: SRModel,
        *,
        tile: int | None = None,
        overlap: int | None = None,
        batch_size: int | None = None,
        device: str | torch.device | None = "auto",
        amp: str | bool | None = "auto",
        channels_last: bool | None = None,
        progress: bool = False,
        backend: str | None = None,
        threads: int | None = None,
        max_memory: int | str | None = None,
    ) -> None:
        check_tile(tile)  # (a tile below 8 px blends seams over most of each window)
        if batch_size is not None:
            batch_size = whole("batch_size", batch_size, 1)
        self._settings: dict[str, Any] = {
            "tile": tile,
            "overlap": overlap,
            "batch_size": batch_size,
            "device": device,
            "amp": amp,
            "channels_last": channels_last,
            "progress": progress,
            "backend": backend,
            "threads": threads,
            "max_memory": max_memory,
        }
        settings = settings_with(backend, threads, max_memory)
        self.runner = NetworkRunner(
            model,
            device=device,
            amp=amp,
            channels_last=channels_last,
            backend=settings.backend or "torch",
            threads=settings.threads,
        )
        self.batch_size = batch_size or (4 if self.device.type == "cuda" else 1)
        self.progress = progress
        self.scale = model.scale
        self.multiple = int(getattr(model, "size_multiple", 1))
        self.memory_budget: int | None = None
        chosen = tile is not None or overlap is not None  # the user's tiling, not the budget's
        if tile is None:
            with torch_threads(self.threads):
                tile = self._budget_tile(settings.max_memory)
        self.tiling = resolve_tiling(model, tile, overlap)
        if not self.tiling.exact and not _TILING_SAID.get():
            # a finite radius the user's --tile/--overlap cuts short: a choice worth a warning
            cut_short = chosen and model.receptive_radius() is not None
            log.log(
                logging.WARNING if cut_short else logging.INFO,
                "%s: tiles blend over %d px; margin %d < receptive radius %s, so tiled output "
                "approximates whole-image output",
                model_label(model),
                self.tiling.overlap,
                self.tiling.margin,
                model.receptive_radius(),
            )

    def with_model(self, model: SRModel) -> Upscaler:
        """A new engine built with this one's arguments around ``model`` (e.g. a fine-tuned
        copy, :func:`sr_domains.adapt.adapt_model`)."""
        same = model.receptive_radius() == self.model.receptive_radius()
        token = _TILING_SAID.set(same)  # (this engine's tiling note was said already)
        try:
            return Upscaler(model, **self._settings)
        finally:
            _TILING_SAID.reset(token)

    def with_tile(self, tile: int) -> Upscaler:
        """A new engine built with this one's arguments and network, with ``tile`` LR pixels
        (e.g. a tile whose grid a split across workers can cut, :mod:`sr_domains.geo.split`)."""
        return Upscaler(self.model, **{**self._settings, "tile": tile})

    # the network's placement (:class:`~sr_domains.runtime.NetworkRunner`, ``self.runner``)
    @property
    def model(self) -> SRModel:
        return self.runner.model

    @property
    def device(self) -> torch.device:
        return self.runner.device

    @property
    def channels_last(self) -> bool:
        return self.runner.channels_last

    @property
    def threads(self) -> int | None:
        return self.runner.threads

    def _budget_tile(self, max_memory: int | str | None) -> int:
        """The default tile: the largest window whose batch fits the memory budget."""
        from .memory import budget_tile

        try:
            tile, self.memory_budget = budget_tile(
                self.model,
                self.runner.compute_device,
                max_memory,
                budget_device=self.device,
                multiple=self.multiple,
                channels_last=self.channels_last,
                batch=self.batch_size,
                margin=MAX_AUTO_MARGIN,
                ramp=RAMP,
            )
        except Exception as exc:  # an arbitrary wrapped network may reject the probe
            if isinstance(exc, ConfigError):
                raise
            log.info("memory probe failed (%s); default tile %d", exc, DEFAULT_TILE)
            return DEFAULT_TILE
        return tile

    # how the data's bands meet the model's channels (:mod:`sr_domains.band_modes`)
    def band_mode(self, n_bands: int) -> str:
        """``"joint"`` when the model takes all bands, ``"per_band"`` for a 1-channel model."""
        return band_mode(self.model, n_bands)

    def auto_spectral(self, n_bands: int) -> bool:
        """Whether ``--spectral auto`` gives multi-band output bicubic's band ratios
        (:func:`~sr_domains.band_modes.auto_spectral`)."""
        return auto_spectral(self.model, n_bands)

    def out_channels(self, n_bands: int) -> int:
        return out_channels(self.model, n_bands)

    def _runner(
        self, n_bands: int, band_order: Sequence[int] | None = None
    ) -> Callable[[np.ndarray], np.ndarray]:
        return band_runner(self.runner, self.model, n_bands, band_order, self.batch_size)

    # -- planning and streaming -------------------------------------------------------------
    def plan(self, shape: tuple[int, int]) -> TilePlan:
        """The tile plan for an LR image of ``shape`` (rows, cols)."""
        t = self.tiling
        return make_plan(
            shape,
            scale=self.scale,
            tile=t.tile,
            overlap=t.overlap,
            margin=t.margin,
            multiple=self.multiple,
        )

    def stream(
        self,
        read: RawReadFn,
        shape: tuple[int, int],
        n_bands: int,
        *,
        profile: IntensityProfile,
        fill: float | Sequence[float] | np.ndarray = 0.0,
        flush_rows: int = 1,
        desc: str = "upscaling",
        rules: ValueRules | None = None,
        band_order: Sequence[int] | None = None,
        rows: tuple[int, int] | None = None,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Upscale an image read window by window; yield ``(hr_row0, block)`` row blocks.

        ``block`` is ``(C_out, rows, W*s)`` in stored units (profile inverted; cast with
        :func:`~sr_domains.intensity.cast_to_dtype`): float32, or float64 when ``read``
        returns values float32 cannot hold (float64, 32-bit integers;
        :func:`~sr_domains.intensity.work_dtype`), so the value rules keep them exactly.
        Invalid pixels (mask False, NaN, inf) are filled before the network from the valid
        pixels around them, fading to ``fill`` (normalized units, per band) away from any data
        (:mod:`sr_domains.nodata_fill`; the window is read with the fill's margin, so windows
        agree), and windows with no valid pixel are skipped; the caller masks those output
        pixels.
        ``rules`` (:class:`~sr_domains.value_domain.ValueRules`) are applied to every block
        right after the profile is inverted. ``band_order`` feeds the bands to a joint model in
        that order (the model's band semantics) and returns the output in the input's order.
        ``rows = (r0, r1)`` produces only HR rows ``r0 <= r < r1`` (windows with no blend
        weight there are skipped, :meth:`~sr_domains.tiling.TilePlan.row_reach`; the rows equal
        those of a whole run bit for bit, so an image can be split across workers).
        """
        plan = self.plan(shape)
        if rules is not None and rules.spectral is None:  # "auto"
            rules.spectral = n_bands >= 2 and self.auto_spectral(n_bands)
        windows = WindowReader(read, plan, shape, n_bands, profile, fill, rows)
        bar = _progress(plan.n_windows, desc, self.progress)
        threads = torch_threads(self.threads)
        threads.__enter__()
        try:
            for row0, block in stream_tiles(
                plan,
                windows,
                self._runner(n_bands, band_order),
                self.out_channels(n_bands),
                batch_size=self.batch_size,
                skip=windows.skip,
                flush_rows=flush_rows,
                on_window=bar.update if bar else None,
            ):
                if rows is not None:
                    a, b = max(row0, rows[0]), min(row0 + block.shape[1], rows[1])
                    if a >= b:
                        continue
                    block, row0 = block[:, a - row0 : b - row0], a
                out = profile.denormalize(block, dtype=windows.dtype)
                del block  # hold no strip-sized view while the next strip is computed
                if rules is not None and rules.active:
                    rules.apply(out, read, shape, row0, self.scale)
                yield row0, out
                del out  # nor the last block: the consumer has it (and may drop it)
        finally:
            threads.__exit__(None, None, None)
            if bar:
                bar.close()

    def upscale(
        self,
        array: np.ndarray,
        *,
        profile: IntensityProfile | str,
        valid_mask: np.ndarray | None = None,
        fill: float | Sequence[float] | np.ndarray | None = None,
        rules: ValueRules | None = None,
    ) -> np.ndarray:
        """Upscale a ``(C, H, W)`` in-memory array; returns stored units, float32 or float64
        (``rules`` and the dtype: see :meth:`stream`). ``profile``: a fitted profile, or a
        recipe (``"identity"``, ``"dtype"``...) fitted to ``array`` here."""
        if array.ndim != 3:
            raise ConfigError(f"expected a (C, H, W) array, got shape {array.shape}")
        if not isinstance(profile, IntensityProfile):
            profile = profile_from_any(profile, array, dtype=array.dtype, valid_mask=valid_mask)
        c, h, w = array.shape
        if fill is None:
            fill = _valid_mean(array, profile, valid_mask)

        def read(y0: int, x0: int, rh: int, rw: int) -> tuple[np.ndarray, np.ndarray | None]:
            v = array[:, y0 : y0 + rh, x0 : x0 + rw]
            m = None
            if valid_mask is not None:
                m = valid_mask[..., y0 : y0 + rh, x0 : x0 + rw]
            return v, m

        s = self.scale
        out = None
        for row0, block in self.stream(read, (h, w), c, profile=profile, fill=fill, rules=rules):
            if row0 == 0 and block.shape[1] == h * s:
                return block  # one block: the whole image
            if out is None:
                out = np.empty((self.out_channels(c), h * s, w * s), block.dtype)
            out[:, row0 : row0 + block.shape[1]] = block
        assert out is not None
        return out


def _progress(total: int, desc: str, enabled: bool):
    if not enabled or total <= 1:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="tile", leave=False)


def default_profile(model: SRModel, dtype: np.dtype) -> str:
    """Profile recipe used when none is given: the model card's, else ``dtype`` for integer
    data and ``identity`` for float data (documented rule, never a guess from values)."""
    card = getattr(model, "card", None)
    if card is not None and getattr(card, "profile", None):
        recipe = card.profile.get("recipe") if isinstance(card.profile, dict) else None
        if recipe:
            return str(recipe)
    return "dtype" if np.dtype(dtype).kind in "ui" else "identity"


__all__ = [
    "MAX_AUTO_MARGIN",
    "RAMP",
    "EngineSettings",
    "RawReadFn",
    "Tiling",
    "Upscaler",
    "default_profile",
    "resolve_amp",
    "resolve_device",
    "resolve_tiling",
]
