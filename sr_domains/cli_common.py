"""Pieces shared by the ``sr-domains`` sub-commands (main CLI and the train/evaluate ones)."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Iterator


def add_progress(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--progress", dest="progress", action="store_true", default=None,
        help="progress bars even when stderr is not a terminal",
    )  # fmt: skip
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars: ``--progress`` / ``--no-progress``, else only on a terminal (stderr),
    never with ``-q``."""
    if getattr(args, "quiet", False):
        return False
    if args.progress is not None:
        return bool(args.progress)
    return sys.stderr.isatty()


@contextlib.contextmanager
def command_warnings(quiet: bool) -> Iterator[None]:
    """Python warnings while a command runs: none with ``-q`` (errors only); otherwise none
    from pydicom, which logs each of its warnings too (``warn_and_log``): the log record,
    shown at the level ``-v``/``-q`` set, says it once."""
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        else:
            warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
        yield


__all__ = ["add_progress", "command_warnings", "show_progress"]
