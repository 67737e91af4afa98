"""The row bands of a split raster (:mod:`sr_domains.geo.split`) on Dask, stopped as a batch
is (:mod:`sr_domains.batch_stop`).

* The first band that fails stops the run at once (the others are not waited for) with its
  own error; a refusal (bad input, unusable weights: :data:`~sr_domains.batch_worker.HANDLED`)
  fails once, not retried, and is raised on the client as it was raised on the worker. Dask
  retries a band whose worker died or that raised an unexpected error.
* A stopped or failed run (Ctrl-C, SIGTERM, a band's error) cancels its bands quietly
  (:func:`~sr_domains.batch_stop.cancel_quietly`): no ``CancelledError`` warnings, on the
  client or on the workers of a cluster the run started (``--workers N``; a user's cluster
  keeps its logging).
* Each band writes a part file the client created first (a placeholder): the client removes
  them when the run ends, and a band that starts after that (a cancel does not stop a task
  already sent to a worker) finds its part gone and writes nothing, so no part is left beside
  the output. (A band already writing keeps writing to the removed file, which is gone when it
  closes. A band that opens its part just after the run removed it creates a new file: it
  holds the placeholder open from its start, sees that the path is another file, and removes it
  at once: :func:`sr_domains.geo.split.run_band`.)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..batch_stop import cancel_quietly
from ..batch_worker import HANDLED

#: What runs one band on a worker (:func:`sr_domains.geo.split.run_band`; passed in, so that
#: this module does not import ``split``, which imports it).
BandFn = Callable[..., dict[str, Any]]


def band_task(run_band: BandFn, src: str, part: str, *args: Any) -> dict[str, Any]:
    """``run_band`` (:func:`~sr_domains.geo.split.run_band`) on a worker: ``{"stopped": True}``
    when the run has ended (its part is gone), a refusal returned (``{"refused": ...}``), not
    raised."""
    if not os.path.exists(part):  # the run ended before this band started
        return {"stopped": True}
    try:
        return run_band(src, part, *args)
    except HANDLED as exc:  # it would recur: not retried (an exception would be)
        return {"refused": exc}  # (our errors pickle: sr_domains.errors)


def run_bands(
    client: Any,
    run_band: BandFn,
    parts: Sequence[Path],
    calls: Sequence[tuple[Any, ...]],
    retries: int = 2,
) -> list[dict[str, Any]]:
    """Run :func:`band_task` of ``run_band`` with each of ``calls`` (``(src, part, *args)``,
    their ``part`` in ``parts``) on ``client``'s cluster; their results, in order. The parts
    are created here first (see the module docs); removing them is the caller's."""
    import distributed

    for p in parts:
        with open(p, "xb"):  # (a fresh temporary name: exclusive)
            pass
    futures = [
        client.submit(band_task, run_band, *call, retries=retries, pure=False) for call in calls
    ]
    dask_log = logging.getLogger("distributed")
    level = dask_log.level
    results: dict[Any, dict[str, Any]] = {}
    try:
        for fut in distributed.as_completed(futures, loop=client.loop):  # (first failure: out)
            result = fut.result()
            if "refused" in result:
                raise result["refused"]
            results[fut] = result
    except BaseException:  # a band's error, Ctrl-C, SIGTERM: the others are not waited for
        from ..distributed import embedded

        # the workers of the cluster the run started log no CancelledError either
        cancel_quietly(client, futures, own_workers=embedded(client))
        raise
    finally:
        dask_log.setLevel(level)
    return [results[f] for f in futures]


__all__ = ["band_task", "run_bands"]
