"""Importing spandrel (the optional ``zoo`` extra) lazily, also beside a broken torchvision.

torchvision: spandrel imports it at top level. A torchvision wheel whose C++ operators cannot
load beside the installed torch (the CUDA wheel from PyPI next to the CPU build of torch) then
fails to import with "operator torchvision::nms does not exist", because two of its fake-kernel
registrations are not guarded by ``torchvision.extension._has_ops()`` like all the others
(pytorch/vision#9337). :func:`import_spandrel` retries that import with exactly those
registrations skipped for operators that do not exist; torchvision then behaves as it does
whenever its extension is missing (``torchvision.ops.nms`` raises "Couldn't load custom C++
ops"). spandrel itself uses torchvision only in two non-SR architectures (LaMa's ``rotate``,
RestoreFormer's ``normalize``), both plain Python: no architecture needs those operators.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import torch

from .errors import MissingDependencyError

log = logging.getLogger(__name__)

EXTRA = "zoo"
_IMPORT_LOCK = threading.Lock()


def _op_exists(qualname: str) -> bool:
    ns, _, name = qualname.partition("::")
    try:
        getattr(getattr(torch.ops, ns), name)
    except (AttributeError, RuntimeError):
        return False
    return True


@contextlib.contextmanager
def _skip_fakes_of_missing_torchvision_ops() -> Iterator[None]:
    """While importing torchvision: ``torch.library.register_fake("torchvision::X")`` is a no-op
    when operator X was never loaded (the guard torchvision applies to its other operators)."""
    original = torch.library.register_fake

    def guarded(op: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(op, str) and op.startswith("torchvision::") and not _op_exists(op):
            func = args[0] if args else kwargs.get("fn", kwargs.get("func"))
            return func if func is not None else (lambda f: f)
        return original(op, *args, **kwargs)

    torch.library.register_fake = guarded
    try:
        yield
    finally:
        torch.library.register_fake = original


def _import_torchvision() -> None:
    try:
        import torchvision
    except ModuleNotFoundError as exc:
        raise MissingDependencyError("torchvision", EXTRA, "spandrel") from exc
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
        log.info(
            "torchvision's C++ operators do not load with torch %s (%s); importing torchvision "
            "without them (no super-resolution architecture uses them)",
            torch.__version__,
            exc,
        )
        with _skip_fakes_of_missing_torchvision_ops():
            import torchvision  # noqa: F401


def import_spandrel() -> ModuleType:
    """Import spandrel, or raise :class:`MissingDependencyError` naming the ``zoo`` extra.

    Works beside a torchvision whose C++ operators cannot load (see the module docstring).
    """
    with _IMPORT_LOCK:
        try:
            import spandrel

            return spandrel
        except ModuleNotFoundError as exc:
            if exc.name == "spandrel":
                raise MissingDependencyError("spandrel", EXTRA, "public checkpoints") from exc
            if exc.name != "torchvision":
                raise
        except RuntimeError as exc:
            if "torchvision::" not in str(exc):
                raise
        _import_torchvision()
        import spandrel

        return spandrel


def spandrel_installed() -> bool:
    """True when spandrel is installed, without importing it (its import pulls in torchvision
    and ``torch._dynamo``, ~3 s): for listings; :func:`spandrel_available` before use."""
    import importlib.util

    return importlib.util.find_spec("spandrel") is not None


def spandrel_available() -> bool:
    """True when spandrel can be imported (the ``zoo`` extra is installed)."""
    try:
        import_spandrel()
    except ImportError:
        return False
    return True


__all__ = ["EXTRA", "import_spandrel", "spandrel_available", "spandrel_installed"]
