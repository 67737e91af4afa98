"""Value rules of a NIfTI file, volume by volume, and the ``values`` provenance record.

The volumes of a 4-D (or 5-D ...) file need not share a value domain: a magnitude image
(non-negative, exact-zero background) and a phase map (-pi..pi) stored as two volumes of one
file. Each volume therefore gets the rules (:func:`~sr_domains.value_domain.build_rules`) its own
voxels imply, exactly as if it were a 3-D file on its own (its
:meth:`~sr_domains.medical.nifti_io.NiftiSource.scan_volumes` statistics); a 3-D file gets the
rules of the whole-file scan, as always. The intensity profile stays one for the whole file
(an invertible linear map; :func:`~sr_domains.medical.common.fit_profile`).

Volumes are numbered in file order: the 4th and later axes flattened with the 4th fastest
(volume ``v`` of a file with ``Z`` slices is planes ``[v*Z, (v+1)*Z)``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..strict_json import provenance_json
from ..value_domain import ClampStats, ValueOptions, ValueRules, build_rules
from ..value_range_check import warn_outside_range
from .nifti_io import NiftiSource, Scan
from .nifti_write import PlaneWriter, pending_slot

log = logging.getLogger(__name__)

#: Rules of one image, or of each volume of a file (file order).
RulesArg = ValueRules | Sequence[ValueRules | None] | None


def volume_rules(
    options: ValueOptions | None,
    source: NiftiSource,
    whole: Scan,
    volumes: Sequence[Scan],
    *,
    ct: bool,
) -> list[ValueRules | None]:
    """The rules of each of the ``source.n_volumes`` volumes (file order): from the volume's
    own scan, or from ``whole`` for a 3-D file. ``ct``: the intensity profile is a CT one.
    Warns when the whole file's sample leaves the user's value range."""
    warn_outside_range(source.path, whole.sample, None, options, "nifti")
    floating = np.dtype(source.dtype).kind == "f"
    scans = [whole] if source.n_volumes == 1 else list(volumes)
    if len(scans) != source.n_volumes:
        raise ValueError(f"{len(scans)} volume scans for {source.n_volumes} volumes")
    rules = []
    for scan in scans:
        zero = scan.zero_facts(floating=floating)
        rules.append(
            build_rules(
                options,
                [zero.non_negative_minimum],
                dtype=source.dtype,
                slope=source.slope,
                inter=source.inter,
                ct=ct,
                zero=zero,
            )
        )
    return rules


def _rules_record(rules: ValueRules) -> dict[str, Any]:
    return {
        "envelope": rules.envelope,
        "domain": rules.domain.to_dict() if rules.domain is not None else None,
        "pinned": list(rules.pinned[0]) if rules.pinned else [],
        "pin_tolerance": rules.pin_tol,  # float resampling residues held as zero
    }


def values_record(rules: RulesArg, writer: PlaneWriter) -> dict[str, Any]:
    """The ``values`` provenance entry: the rules applied and what they changed.

    ``rules``: one rules object (every volume), or one per volume (file order). When every
    volume's rules are the same (always for a 3-D file) the entry is ``envelope``, ``domain``,
    ``pinned``, ``pin_tolerance``, ``clamped`` (counts summed over the volumes) and
    ``clipped_to_dtype``. Otherwise ``domain``, ``pinned`` and ``pin_tolerance`` move into
    ``per_volume``: a list of ``{"volumes", "domain", "pinned", "pin_tolerance", "clamped"}``,
    one entry per distinct domain and pinned values: ``volumes`` are file-order indexes and
    ranges (``[0, "2-299"]``), ``pin_tolerance`` is one number, or one per volume of the
    entry where they differ (a float file's tolerance comes from each volume's own values),
    while ``envelope``, ``clamped`` (the sum) and ``clipped_to_dtype`` stay at the top. The
    record always fits the header's placeholder (:func:`~sr_domains.medical.nifti_write.
    pending_slot`): past it, the tolerances of an entry become ``{"min", "max"}``, then the
    entries a count.
    """
    given = [rules] if rules is None or isinstance(rules, ValueRules) else list(rules)
    per = [r for r in given if r is not None]
    if not per or len(per) < len(given):  # (clamp=False: for every volume)
        return {"clamp": False, "clipped_to_dtype": writer.clipped}
    total = ClampStats()
    groups: dict[str, tuple[dict[str, Any], list[int], list[float], ClampStats]] = {}
    for v, r in enumerate(per):
        total.add(r.stats)
        rec = _rules_record(r)
        tol = rec.pop("pin_tolerance")
        _, volumes, tols, stats = groups.setdefault(
            json.dumps(rec, sort_keys=True), (rec, [], [], ClampStats())
        )
        volumes.append(v)
        tols.append(tol)
        stats.add(r.stats)
    if total.envelope + total.domain:
        log.info("%s", total.describe())
    if len(groups) == 1 and len(set(next(iter(groups.values()))[2])) == 1:
        ((rec, _, tols, _),) = groups.values()
        return {
            **rec,
            "pin_tolerance": tols[0],
            "clamped": total.to_dict(),
            "clipped_to_dtype": writer.clipped,
        }
    entries = [
        {"volumes": _ranges(volumes), **{k: v for k, v in rec.items() if k != "envelope"}}
        | {"pin_tolerance": tols[0] if len(set(tols)) == 1 else tols}
        | {"clamped": stats.to_dict()}
        for rec, volumes, tols, stats in groups.values()
    ]
    record: dict[str, Any] = {
        "envelope": per[0].envelope,
        "per_volume": entries,
        "clamped": total.to_dict(),
        "clipped_to_dtype": writer.clipped,
    }
    room = len(pending_slot(len(per)))
    if len(provenance_json(record)) > room:  # (it always fits its slot: less detail)
        for e in entries:
            if isinstance(e["pin_tolerance"], list):
                e["pin_tolerance"] = {
                    "min": min(e["pin_tolerance"]),
                    "max": max(e["pin_tolerance"]),
                }
    if len(provenance_json(record)) > room:
        record["per_volume"] = f"{len(entries)} sets of rules over {len(per)} volumes (not listed)"
    return record


def _ranges(volumes: list[int]) -> list[int | str]:
    """``[0, 1, 2, 5, 7, 8]`` -> ``["0-2", 5, "7-8"]``: a long series in a few entries."""
    out: list[int | str] = []
    start = prev = volumes[0]
    for v in [*volumes[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        out.append(start if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return out


__all__ = ["RulesArg", "values_record", "volume_rules"]
