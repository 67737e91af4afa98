"""The Dask cluster of a batch run (:func:`sr_domains.distributed.upscale_many`): a user's
client, a client of a scheduler (``--scheduler`` or ``SR_DOMAINS_SCHEDULER``), or an embedded
``LocalCluster`` whose workers are the run's own (:func:`embedded`), closed after the run with
the caller's process as it was (Dask's log levels, the environment variables its nanny sets).

Split from :mod:`sr_domains.distributed` (which re-exports :func:`cluster_client` and
:func:`embedded`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .batch_stop import IGNORE_CTRL_C
from .errors import ConfigError, MissingDependencyError, SRDomainsError
from .worker_plugins import console_plugin, threads_plugin

log = logging.getLogger(__name__)

#: The clients of the clusters :func:`cluster_client` started (their workers are the run's own).
_EMBEDDED: weakref.WeakSet[Any] = weakref.WeakSet()


def embedded(client: Any) -> bool:
    """Whether ``client`` is of a cluster :func:`cluster_client` started for the run (its
    workers are the run's own), not a user's client or scheduler."""
    return client in _EMBEDDED


#: Environment variable naming an existing scheduler (``tcp://host:8786``).
SCHEDULER_ENV = "SR_DOMAINS_SCHEDULER"


def dask_distributed() -> Any:
    """The ``distributed`` package (a :class:`MissingDependencyError` naming the extra)."""
    try:
        import distributed
    except ImportError as exc:
        raise MissingDependencyError("distributed", "dask", "distributed runs") from exc
    return distributed


@contextmanager
def cluster_client(
    client: Any = None, workers: int | None = None, scheduler: str | None = None
) -> Iterator[Any]:
    """The client to use: ``client`` as given, a client of ``scheduler`` (or the
    ``SR_DOMAINS_SCHEDULER`` environment variable), or an embedded ``LocalCluster`` of
    ``workers`` processes (closed afterwards), whose ``sr_domains`` records are shown at the
    caller's level (``-q``: errors only; ``-v``: more). None when none of them is asked for."""
    scheduler = scheduler or os.environ.get(SCHEDULER_ENV)
    if client is not None:
        yield client
        return
    if not scheduler and not workers:
        yield None
        return
    dist = dask_distributed()
    if scheduler:
        given = "--scheduler" if os.environ.get(SCHEDULER_ENV) != scheduler else SCHEDULER_ENV
        try:
            # not the process's default client: a malformed address fails after a default
            # client has set dask's scheduler to it and registered itself, which left every
            # later ``.compute()`` of the process asking for (or waiting on) a dead client
            c = dist.Client(scheduler, set_as_default=False)
        except ValueError as exc:  # "missing port number", "unknown address scheme"
            raise ConfigError(
                f"{given} {scheduler!r} is not a Dask scheduler address ({exc}); give one like "
                "tcp://host:8786"
            ) from exc
        except (OSError, TimeoutError) as exc:  # (distributed raises OSError when it times out)
            raise SRDomainsError(
                f"cannot reach the Dask scheduler {scheduler} (from {given}): {exc}; is it "
                "running at that address?"
            ) from exc
        with c:
            yield c
        return
    cores = os.cpu_count() or 1
    # Dask logs every worker start at INFO: only with -v (our logger at INFO or below)
    quiet = logging.WARNING if log.getEffectiveLevel() > logging.INFO else logging.INFO
    dask_log, nanny = logging.getLogger("distributed"), logging.getLogger("distributed.nanny")
    with (
        # the caller's process as it was after the run: Dask's log levels, and the variables
        # distributed's nanny puts in os.environ for its workers (OMP_NUM_THREADS=1,
        # PYTHONHASHSEED, MALLOC_TRIM_THRESHOLD_, ...), which every later subprocess inherited
        level_restored(dask_log, dask_log.level),
        level_restored(nanny, nanny.level),
        _environ_restored(),
    ):
        dask_log.setLevel(quiet)
        with _embedded_client(dist, workers, quiet, nanny) as c:
            c.register_plugin(threads_plugin(max(1, cores // int(workers or 1))))
            c.register_plugin(console_plugin(logging.getLogger("sr_domains").getEffectiveLevel()))
            yield c


@contextmanager
def _embedded_client(dist: Any, workers: int | None, quiet: int, nanny: Any) -> Iterator[Any]:
    """A client of a ``LocalCluster`` of ``workers`` one-thread processes, closed after."""
    with (
        dist.LocalCluster(
            n_workers=int(workers or 1),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,  # no dashboard (a user's own cluster may have one)
            # the scheduler's HTTP server (health checks) listens even so, by default on the
            # dashboard's port 8787: "Port 8787 is already in use" beside any other cluster.
            # A free port of this machine only, instead.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=quiet,
            # Ctrl-C reaches the workers too (one process group): the run stops them itself
            preload=[IGNORE_CTRL_C],
        ) as cluster,
        dist.Client(cluster, set_as_default=False) as c,  # (the caller's default stays)
    ):
        _EMBEDDED.add(c)
        try:
            yield c
        finally:  # a worker slow to exit (a loaded machine) is killed by its nanny at WARNING:
            # "Worker process still alive after 4.0 seconds, killing", noise after a good run
            nanny.setLevel(logging.ERROR if quiet > logging.INFO else quiet)


@contextlib.contextmanager
def _environ_restored() -> Iterator[None]:
    """The variables distributed sets in ``os.environ`` for its workers and scheduler as
    they were, on exit (added ones removed, changed ones put back); any other variable set
    meanwhile (by the caller's own threads, say) is left as it is."""
    import dask.config

    dasks = {"PYTHONHASHSEED", "__DASK_PARENT_PID", "DASK_SCHEDULER_ADDRESS"}
    for key in ("distributed.nanny.pre-spawn-environ", "distributed.nanny.environ"):
        dasks |= set(dask.config.get(key, None) or {})
    before = {key: os.environ.get(key) for key in dasks}
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            elif os.environ.get(key) != value:
                os.environ[key] = value


@contextlib.contextmanager
def level_restored(logger: logging.Logger, level: int) -> Iterator[None]:
    """Set ``logger`` back to ``level`` on exit (after the clusters entered later close)."""
    try:
        yield
    finally:
        logger.setLevel(level)


__all__ = ["SCHEDULER_ENV", "cluster_client", "dask_distributed", "embedded", "level_restored"]
