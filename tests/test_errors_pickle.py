"""Every exception class of :mod:`sr_domains.errors` crosses a process boundary (a Dask
process worker, a DataLoader worker) as itself: same class, message, ``args`` and attributes.
``InputFileError``, ``UnsafeOutputError``, ``BandMismatchError`` and
``MissingDependencyError`` could not be unpickled (their ``__init__`` takes other arguments
than their ``args``)."""

from __future__ import annotations

import inspect
import multiprocessing
import pickle
from typing import Any

import pytest

from sr_domains import errors

#: A value for each constructor parameter, by name (a new parameter name fails the test below:
#: give it a value here).
_VALUES: dict[str, Any] = {
    "path": "out/a.tif",
    "problem": "is a named pipe (FIFO)",
    "why": "made with other weights",
    "model_bands": 3,
    "data_bands": 1,
    "hint": "the file has {n}",
    "source": "in/a.tif",
    "package": "rasterio",
    "extra": "geo",
    "feature": "GeoTIFF support",
    "first": errors.InputFileError("in/b.dcm", "cannot be decoded"),
    "n_more": 2,
    "report": {"series": ["1.2.3"], "files": 4},
}


def _classes() -> list[type[BaseException]]:
    """Every exception class defined in :mod:`sr_domains.errors` (not a hard-coded list)."""
    found = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, BaseException) and c.__module__ == errors.__name__
    ]
    assert len(found) >= 12
    return sorted(found, key=lambda c: c.__name__)


def _instance(cls: type[BaseException]) -> BaseException:
    ours = [c for c in cls.__mro__ if c.__module__ == errors.__name__ and "__init__" in vars(c)]
    if not ours:
        return cls(f"{cls.__name__}: something went wrong")  # (a message, as the built-ins)
    init = ours[0].__init__
    params = [
        p
        for p in inspect.signature(init).parameters.values()
        if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"
    ]
    missing = [p.name for p in params if p.name not in _VALUES]
    assert not missing, f"{cls.__name__}: give _VALUES a value for {missing}"
    return cls(**{p.name: _VALUES[p.name] for p in params})


def _same(a: BaseException, b: BaseException) -> None:
    assert type(b) is type(a)
    assert str(b) == str(a) and b.args == a.args
    assert vars(b).keys() == vars(a).keys()
    for key, value in vars(a).items():
        if isinstance(value, BaseException):
            _same(value, vars(b)[key])
        else:
            assert vars(b)[key] == value, key
    for key in ("errno", "strerror", "filename", "name", "path"):
        assert getattr(b, key, None) == getattr(a, key, None), key


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_every_error_round_trips_through_pickle(cls):
    exc = _instance(cls)
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        _same(exc, pickle.loads(pickle.dumps(exc, protocol=protocol)))


def test_os_error_fields_and_notes_survive():
    exc = errors.InputFileError("in/a.tif", "Permission denied")
    exc.errno, exc.filename = 13, "in/a.tif"
    exc.add_note("while reading the header")
    back = pickle.loads(pickle.dumps(exc))
    assert (back.errno, back.filename, back.__notes__) == (13, "in/a.tif", exc.__notes__)
    missing = errors.MissingDependencyError("nibabel", "medical")
    assert pickle.loads(pickle.dumps(missing)).name == "nibabel"


def _raise_in_child(_: int) -> None:
    raise errors.UnsafeOutputError("out/a.tif", "is a folder")


def test_an_error_raised_in_a_worker_process_reaches_the_caller_as_itself():
    """A spawned worker (as a DataLoader's or a Dask process worker) sends the error back."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool, pytest.raises(errors.UnsafeOutputError) as info:
        # (an error that does not unpickle kills the pool's result thread: no answer, ever)
        pool.apply_async(_raise_in_child, (0,)).get(timeout=120)
    assert info.value.path == "out/a.tif" and str(info.value) == "out/a.tif: is a folder"
