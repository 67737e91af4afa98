"""Ctrl-C (SIGINT) and SIGTERM during training: finish the step, write ``last.pt``, then stop.

:class:`StopRequests` holds the signal while the trainer finishes the step it is in; the
trainer then pauses as ``--stop-at`` does (``last.pt`` written, so ``--resume`` continues
exactly) and :meth:`StopRequests.exit` ends the run as the signal would have (Ctrl-C:
:class:`KeyboardInterrupt`, exit status 130; SIGTERM: ``sr-domains``' own handler,
``SystemExit(143)``). A second signal while the step finishes stops at once, without a
checkpoint. Under ``torchrun`` every rank stops at the same step (:meth:`StopRequests.agreed`).

The handlers are installed in the main thread only (Python runs signal handlers there) and
the previous ones are back afterwards; a signal that is ignored, or handled outside Python,
is left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, NoReturn

import torch
import torch.distributed as dist

from .dist import DistInfo

log = logging.getLogger(__name__)

#: The signals a run pauses for.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """The first stop signal received during training (``signum``; 0: none yet)."""

    def __init__(self, info: DistInfo) -> None:
        self.info = info
        self.signum = 0
        self.previous: dict[int, Any] = {}  # the handlers this one replaced
        self._installed = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopRequests]:
        """Defer SIGINT and SIGTERM to :meth:`agreed` while in the block (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        for sig in SIGNALS:
            before = signal.getsignal(sig)
            if before is None or before == signal.SIG_IGN:  # outside Python, or ignored: kept
                continue
            self.previous[sig] = before
            signal.signal(sig, self._received)
        self._installed = True
        try:
            yield self
        finally:
            self._restore()

    def _restore(self) -> None:
        if self._installed:
            self._installed = False
            for sig, before in self.previous.items():
                signal.signal(sig, before)

    def _received(self, signum: int, frame: FrameType | None) -> None:
        if self.signum:  # a second one while the step finishes: stop now, no checkpoint
            self._restore()
            self._deliver(signum, frame)
        self.signum = signum
        if self.info.is_main:  # (os.write: a signal handler must not re-enter sys.stderr)
            name = signal.Signals(signum).name
            with contextlib.suppress(OSError):
                os.write(
                    2,
                    f"\n{name}: finishing the current step to write last.pt "
                    "(send it again to stop at once, without a checkpoint)\n".encode(),
                )

    def agreed(self) -> int:
        """The signal every process stops for after this step (0: go on); under ``torchrun``
        the same on every rank (the largest signal number any of them received)."""
        if not self.info.enabled:
            return self.signum
        flag = torch.tensor([self.signum], dtype=torch.int32, device=self.info.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())

    def exit(self, signum: int, step: int, message: str) -> NoReturn:
        """End the run for ``signum`` after the pause (``message``: what was written, logged
        by the main process), as the signal would have without this class."""
        self._restore()
        if self.info.is_main:
            log.warning("%s at step %d: %s", signal.Signals(signum).name, step, message)
        self._deliver(signum, None)

    def _deliver(self, signum: int, frame: FrameType | None) -> NoReturn:
        before = self.previous.get(signum)
        if callable(before):  # Python's Ctrl-C (KeyboardInterrupt), sr-domains' SIGTERM...
            before(signum, frame)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)


@contextlib.contextmanager
def held_stop_signals() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread while DataLoader workers are started (around
    ``iter(loader)``): a worker forked then inherits them blocked, so a signal sent to the
    process group in the instant before it leaves the group (:func:`ignore_stop_signals`)
    cannot kill it; this process receives it once the block ends."""
    if not hasattr(signal, "pthread_sigmask"):  # (not POSIX)
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def ignore_stop_signals(worker_id: int) -> None:
    """``worker_init_fn`` of the training DataLoaders: a Ctrl-C at the terminal (a scheduler's
    SIGTERM to the job) reaches the whole process group, and a worker it killed failed the
    step the trainer finishes before it writes ``last.pt``. Each worker leaves the group
    instead of ignoring the signals: the DataLoader can still stop it (``terminate`` sends
    SIGTERM, which an ignoring worker survived, hanging the exit), and it ends with the
    training process (PyTorch's watchdog).

    Started under :func:`held_stop_signals`, the worker has the signals blocked: once out of
    the group it drops those sent to the group meanwhile (the training process got them too),
    except its parent's SIGTERM (the DataLoader stopping it), then unblocks them."""
    with contextlib.suppress(OSError):
        os.setpgrp()
    if not hasattr(signal, "pthread_sigmask"):
        return
    pending = set(SIGNALS) & signal.sigpending()
    while pending:
        info = signal.sigtimedwait(pending, 0)
        if info is None:
            break
        if info.si_signo == signal.SIGTERM and info.si_pid == os.getppid():
            os._exit(0)  # (as PyTorch's own worker handler does for its parent's SIGTERM)
        pending = set(SIGNALS) & signal.sigpending()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


__all__ = ["SIGNALS", "StopRequests", "held_stop_signals", "ignore_stop_signals"]
