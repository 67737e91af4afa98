"""How an output was made, and whether a rerun asks for the same.

Every output records what made it (:class:`Made`: the weights, their checksum, the bands, the
in-plane axes and through-plane mode, ``--isotropic``, ``--adapt``, the noise gate's blend): a
GeoTIFF in its ``SR_DOMAINS_*`` tags, a NIfTI file in its JSON provenance extension, a DICOM
series in its folder manifest. A resumable batch skips an output only when the rerun would make
it the same way (:meth:`Requested.differs`); one made otherwise is an existing output, refused
unless ``--overwrite``, with the reason in the message. Besides the weights and the mode, the
record holds the run's *recipe* (:mod:`sr_domains.run_recipe`): every other option that
changes what the output holds (intensity profile, value rules, ``--dtype``, ``--nodata``,
``--cog``/``--co``, the ``--adapt`` and ``--isotropic`` settings). Options that only change
how it is computed (tile, batch size, device, threads, backend) are not compared.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .io_safety import weights_sha256
from .run_recipe import recipe_diff, recipe_of

if TYPE_CHECKING:
    import torch

    from .models.base import SRModel
    from .noise_gate import NoiseChoice
    from .options import IsotropicOptions, UpscaleOptions

#: Key of the :class:`Made` record in NIfTI provenance and DICOM manifests.
MADE_KEY = "made"


@dataclass(frozen=True)
class Made:
    """What an output was made with (the fields that decide whether a rerun may skip it).

    Attributes:
        weights: the weights' name; a noise-gate blend or an adaptation adds ``+...``.
        sha256: checksum of the weights file (``hash_of`` ``"file"``) or of the computed
            weights (``"state_dict"``: a blend, an adapted or in-memory model).
        hash_of: ``"file"`` or ``"state_dict"``.
        base_sha256: checksum of the weights file a blend or adaptation started from.
        scale: the in-plane factor (0: not recorded, e.g. ``--isotropic``).
        bands: the source bands read, ``"1,2,3"`` (GeoTIFF).
        axes: the in-plane axes, ``"0,1"`` (NIfTI).
        through_plane: the slice axis was upscaled too.
        isotropic: the ``--isotropic`` target spacing in mm (0: not isotropic).
        fusion: the ``--isotropic`` fusion.
        adapt: the run asked for ``--adapt``.
        noise: the share of the ``-robust`` variant the noise gate blended in.
        recipe: the other options that change the output (:func:`sr_domains.run_recipe.
            recipe`; "" when an earlier version did not record them).
    """

    weights: str = ""
    sha256: str = ""
    hash_of: str = ""
    base_sha256: str = ""
    scale: float = 0
    bands: str = ""
    axes: str = ""
    through_plane: bool = False
    isotropic: float = 0
    fusion: str = ""
    adapt: bool = False
    noise: float = 0
    recipe: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (NIfTI provenance, DICOM manifest)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, record: object) -> Made | None:
        """The record written by :meth:`to_dict`, or None (absent: an earlier version)."""
        if not isinstance(record, dict):
            return None
        names = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in record.items() if k in names})
        except TypeError:
            return None

    @classmethod
    def from_tags(cls, tags: dict[str, str], prefix: str) -> Made:
        """From a GeoTIFF's provenance tags (``prefix`` ``SR_DOMAINS_``)."""
        noise = 0.0
        with contextlib.suppress(ValueError, AttributeError):
            noise = float(json.loads(tags.get(f"{prefix}NOISE", "{}")).get("weight", 0))
        try:
            scale = float(tags.get(f"{prefix}SCALE", "0"))
        except ValueError:
            scale = 0
        return cls(
            weights=tags.get(f"{prefix}MODEL", ""),
            sha256=tags.get(f"{prefix}WEIGHTS_SHA256", ""),
            hash_of=tags.get(f"{prefix}WEIGHTS_HASH_OF", ""),
            base_sha256=tags.get(f"{prefix}BASE_WEIGHTS_SHA256", ""),
            scale=scale,
            bands=tags.get(f"{prefix}SOURCE_BANDS", ""),
            adapt=f"{prefix}ADAPT" in tags,
            noise=noise,
            recipe=tags.get(f"{prefix}RECIPE", ""),
        )

    def blended(self, noise: NoiseChoice | None, net: torch.nn.Module) -> Made:
        """After the noise gate: the blend when it changed the weights."""
        if noise is None or noise.weight == 0:
            return self
        return _derived(self, f"+{noise.weight:.2f}x{noise.variant}", net, noise=noise.weight)

    def adapted(self, requested: bool, changed: bool, net: torch.nn.Module) -> Made:
        """After ``--adapt`` (``requested``): the adapted weights when they were kept."""
        if not requested:
            return self
        made = _derived(self, "+adapted", net) if changed else self
        return Made(**{**made.to_dict(), "adapt": True})


def _derived(made: Made, suffix: str, net: torch.nn.Module, **changes: Any) -> Made:
    base = made.base_sha256 or (made.sha256 if made.hash_of == "file" else "")
    return Made(
        **{
            **made.to_dict(),
            "weights": made.weights + suffix,
            "sha256": sha256_state(net),
            "hash_of": "state_dict",
            "base_sha256": base,
            **changes,
        }
    )


def sha256_state(model: torch.nn.Module) -> str:
    """Checksum of a model's weights as computed with (a blend, an adapted model)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def weights_provenance(
    model: SRModel | str | None, weights: str | Path | None, net: SRModel, scale: int, n: int
) -> tuple[str, str, str]:
    """``(name, sha256, "file" | "state_dict")`` of the weights actually used. A model object
    that records the file it was loaded from (``weights_source = (name, path)``, set by the
    distributed runner's per-worker cache) is described like that file, with the checksum
    taken when it was loaded (``weights_sha256``), not of the file as it is now."""
    from .models.base import SRModel

    source = getattr(net, "weights_source", None)
    loaded = getattr(net, "weights_sha256", None)  # hashed when loaded: what it computes with
    if weights is None and isinstance(model, SRModel) and source is not None:
        return str(source[0]), loaded or weights_sha256(Path(source[1])), "file"
    if weights is not None:
        p = Path(weights)
        same = source is not None and str(source[1]) == str(weights)
        return p.name, (loaded if same and loaded else weights_sha256(p)), "file"
    if model is None or isinstance(model, str):
        try:
            from .pretrained import default_pretrained, list_pretrained

            entries = {e.name: e for e in list_pretrained()}
            entry = entries.get(model) if model else default_pretrained(scale, n)
            if entry is not None:
                return entry.name, weights_sha256(entry.path), "file"
        except Exception:  # provenance lookup must never break a run
            pass
    card = getattr(net, "card", None)
    name = card.get("name") if isinstance(card, dict) else getattr(card, "name", None)
    name = name or (model if isinstance(model, str) else "in-memory")
    return str(name), sha256_state(net), "state_dict"


def weights_made(
    model: Any,
    weights: str | os.PathLike[str] | None,
    net: SRModel,
    scale: int,
    n: int,
    **fields: Any,
) -> Made:
    """:class:`Made` at ``scale`` for the weights ``net`` was resolved from (before a blend or
    adaptation; ``n``: bands in); ``fields``: the other :class:`Made` fields (axes, ...)."""
    w = Path(weights) if weights is not None else None
    name, sha, of = weights_provenance(_model_arg(model), w, net, scale, n)
    return Made(weights=name, sha256=sha, hash_of=of, scale=scale, **fields)


def _model_arg(model: Any) -> Any:
    """An :class:`~sr_domains.inference.Upscaler` passed as the model is its network."""
    inner = getattr(model, "model", None)
    return inner if inner is not None and hasattr(model, "tiling") else model


@dataclass(frozen=True)
class Requested:
    """What a run makes its outputs from (the model or weights it names, the bands it reads,
    the medical mode, ``--adapt``), so that a resume skips only the finished outputs made the
    same way: an output of another run is an existing output, not a done one."""

    model: Any = None
    weights: str | Path | None = None
    bands: tuple[int, ...] | None = None
    adapt: bool = False
    axes: tuple[int, int] | None = None
    through_plane: bool = False
    isotropic: IsotropicOptions | None = None
    recipe: str = "{}"

    @classmethod
    def of(cls, options: UpscaleOptions, model: Any = None, domain: str = "") -> Requested:
        """What ``options`` ask of an input of ``domain`` (``model``: a model object used
        instead of ``options.model``). The medical options do not apply to a GeoTIFF (its
        task refuses them itself)."""
        medical = domain != "geotiff"
        iso = options.isotropic if medical else None
        return cls(
            model=model if model is not None else options.model,
            weights=options.weights,
            bands=options.bands,
            adapt=options.adapt is not None,
            axes=options.axes if medical else None,
            through_plane=options.through_plane and medical,
            isotropic=iso,
            recipe=recipe_of(options, domain),
        )

    def differs(self, made: Made | None, scale: int, bands: tuple[int, ...] = (1,)) -> str:
        """Why an output ``made`` so was made otherwise ("" if it was not); ``bands``: the
        bands a run reads of the input when none are selected (GeoTIFF: all but an alpha
        band, :func:`~sr_domains.geo.reader.default_bands`, as the writer does)."""
        if made is None:
            return "made by an earlier sr_domains, which did not record how"
        if self.isotropic is not None:
            return self._isotropic(made) or self._recipe(made)
        if made.isotropic:
            return f"made by --isotropic ({made.isotropic:g} mm), not x{scale}"
        if made.scale and made.scale != scale:
            return f"made x{made.scale:g}, not x{scale}"
        read = self.bands or bands
        return (
            self._mode(made)
            or self._bands(made, read)
            or self._weights(made, scale, len(read))
            or self._recipe(made)
        )

    def _recipe(self, made: Made) -> str:
        if not made.recipe:
            return "made by an earlier sr_domains, which did not record its other options"
        if made.recipe == self.recipe:
            return ""
        return f"made with other options: {recipe_diff(made.recipe, self.recipe)}"

    def _isotropic(self, made: Made) -> str:
        assert self.isotropic is not None
        if not made.isotropic:
            return f"made x{made.scale:g} in-plane, not by --isotropic"
        target = self.isotropic.target_spacing
        if target is not None and f"{target:.4g}" != f"{made.isotropic:.4g}":
            return f"made isotropic {made.isotropic:.4g} mm, not {target:.4g} mm"
        if made.fusion and made.fusion != self.isotropic.fusion:
            return f"made with --fusion {made.fusion}, not {self.isotropic.fusion}"
        return ""

    def _mode(self, made: Made) -> str:
        if made.through_plane != self.through_plane:
            how = "with" if made.through_plane else "without"
            return f"made {how} --through-plane"
        if self.axes is not None and made.axes and made.axes != ",".join(map(str, self.axes)):
            return f"made on axes {made.axes}, not {','.join(map(str, self.axes))}"
        if made.adapt != self.adapt:
            return f"made {'with' if made.adapt else 'without'} --adapt"
        return ""

    def _bands(self, made: Made, read: tuple[int, ...]) -> str:
        if not made.bands:
            return ""
        bands = ",".join(map(str, read))
        return f"made from bands {made.bands}, not {bands}" if made.bands != bands else ""

    def _weights(self, made: Made, scale: int, n: int) -> str:
        want = _weights_of(self.model, self.weights, scale, n)
        if want is None:  # a model object: nothing to compare
            return ""
        name, sha = want
        if made.weights != name and not made.weights.startswith(name + "+"):
            return f"made with other weights: {made.weights}, not {name}"
        from .noise_gate import chosen_by_default  # (imports torch: not for a plain check)

        if made.noise and not chosen_by_default(self.model, self.weights):
            return f"made with the noise gate's blend ({made.weights}), not {name} as it is"
        started = made.base_sha256 or (made.sha256 if made.hash_of == "file" else "")
        if started and started != sha:
            return f"made with other weights: an earlier {name}"
        return ""


def _weights_of(
    model: Any, weights: str | Path | None, scale: int, n: int
) -> tuple[str, str] | None:
    """``(name, sha256)`` the provenance records for weights named like this (see
    :func:`weights_provenance`), or None for a model object."""
    if weights is not None:
        p = Path(weights)
        return (p.name, weights_sha256(p)) if p.is_file() else None
    if model is not None and not isinstance(model, str):
        return None
    from .pretrained import default_pretrained, list_pretrained

    entries = {e.name: e for e in list_pretrained()}
    entry = entries.get(model) if model else default_pretrained(scale, n)
    return (entry.name, weights_sha256(entry.path)) if entry is not None else None


__all__ = [
    "MADE_KEY",
    "Made",
    "Requested",
    "sha256_state",
    "weights_made",
    "weights_provenance",
]
