"""Dask worker plugins of an embedded cluster (:func:`sr_domains.distributed.cluster_client`):
torch threads per worker, and the caller's console log level on the workers."""

from __future__ import annotations

import logging
from typing import Any


def threads_plugin(threads: int) -> Any:
    """A worker plugin setting torch's threads per worker process (no oversubscription)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class TorchThreads(WorkerPlugin):
        name = "sr-domains-torch-threads"

        def setup(self, worker: Any) -> None:
            import torch

            torch.set_num_threads(threads)

    return TorchThreads()


def console_plugin(level: int) -> Any:
    """A worker plugin logging ``sr_domains`` records on the worker's stderr (an embedded
    cluster's: the run's console) at ``level``, the one ``-v``/``-q`` set in the caller, in
    the CLI's format; above WARNING (``-q``: errors only) Python warnings are off there too."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class ConsoleLevel(WorkerPlugin):
        name = "sr-domains-console-level"

        def setup(self, worker: Any) -> None:
            import sys
            import warnings

            logger = logging.getLogger("sr_domains")
            logger.setLevel(level)
            if not any(getattr(h, "sr_domains_console", False) for h in logger.handlers):
                handler = logging.StreamHandler(sys.stderr)
                handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
                handler.sr_domains_console = True  # type: ignore[attr-defined]
                logger.addHandler(handler)
            logger.propagate = False  # (once: not again through a handler of the root's)
            if level > logging.WARNING:
                warnings.simplefilter("ignore")

    return ConsoleLevel()


__all__ = ["console_plugin", "threads_plugin"]
