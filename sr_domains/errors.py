"""Exception hierarchy.

Every error raised on purpose by sr_domains derives from :class:`SRDomainsError` and also from
the built-in exception a caller would naturally catch (``ValueError``, ``OSError``, ...), so
``except ValueError`` keeps working for code that does not know about sr_domains.
"""

from __future__ import annotations

import os
import re
from os import PathLike
from typing import Any


class SRDomainsError(Exception):
    """Base class of all sr_domains errors.

    Every one pickles (a Dask process worker, a DataLoader worker sends it to the caller) as
    its class, ``args`` and attributes, without calling its ``__init__`` again, whose
    arguments need not be its ``args``."""

    def __reduce__(self) -> tuple[Any, ...]:
        state = dict(vars(self))
        if isinstance(self, OSError):  # (slots, not attributes: errno, filename...)
            for key in ("errno", "strerror", "filename", "filename2"):
                if getattr(self, key) is not None:
                    state[key] = getattr(self, key)
        if isinstance(self, ImportError):
            state.update(name=self.name, path=self.path)
        return _rebuilt, (type(self), self.args), state


def _rebuilt(cls: type[SRDomainsError], args: tuple[Any, ...]) -> SRDomainsError:
    """An error of ``cls`` with these ``args``, its ``__init__`` not called (pickle then sets
    its attributes)."""
    exc = cls.__new__(cls, *args)
    exc.args = args
    return exc


class ConfigError(SRDomainsError, ValueError):
    """A configuration value or file is invalid (unknown key, wrong type, bad value)."""


class BandMismatchError(ConfigError):
    """The model takes another number of bands than the data has (or than are selected)."""

    def __init__(self, model_bands: int, data_bands: int, hint: str, source: str = "") -> None:
        self.model_bands, self.data_bands, self.hint = model_bands, data_bands, hint
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(
            f"{where}the model takes {model_bands} band(s) but {hint.format(n=data_bands)}; "
            "select matching bands or use a single-channel model"
        )

    def naming(self, source: str | PathLike[str]) -> BandMismatchError:
        """The same error, naming the file whose data it is about."""
        return BandMismatchError(self.model_bands, self.data_bands, self.hint, str(source))


class ModelScaleError(ConfigError):
    """The model chosen does not upscale by the requested factor, or no shipped weights do."""

    def naming(self, source: str | PathLike[str]) -> ModelScaleError:
        """The same error, naming the input the run was for."""
        return ModelScaleError(f"{source}: {self}")


class TooSmallToAdaptError(ConfigError):
    """The input holds too few pixels to adapt a model on (``--adapt``)."""

    def naming(self, source: str | PathLike[str]) -> InputFileError:
        """The same problem as an error naming the input file."""
        return InputFileError(source, str(self))


class RegistryError(SRDomainsError, KeyError):
    """A name is not registered, or is registered twice."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class CheckpointError(SRDomainsError, ValueError):
    """A checkpoint cannot be read or does not match the architecture."""


class TrainingDivergedError(SRDomainsError, FloatingPointError):
    """Training produced a non-finite loss (e.g. a learning rate too high)."""


class InputFileError(SRDomainsError, OSError):
    """An input file is missing, corrupt, or holds data sr_domains cannot handle.

    The message always names the file.
    """

    def __init__(self, path: str | PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" if self.path else self.problem

    @classmethod
    def missing(cls, path: str | PathLike[str]) -> InputFileError:
        """The error for an input that is not there; a broken link says where it pointed, a
        GDAL virtual path (``/vsizip/...``) that it is not read."""
        if os.path.islink(path):
            return cls(path, f"broken link (to {os.readlink(path)})")
        if is_gdal_virtual(path):
            return cls(
                path,
                "GDAL virtual file systems (/vsizip/, /vsicurl/, /vsis3/, ...) are not read: "
                "outputs are checked against their inputs as files on disk; extract or "
                "download the file first",
            )
        return cls(path, "file not found")

    @classmethod
    def check_file(cls, path: str | PathLike[str], what: str) -> None:
        """Raise unless ``path`` is there and not a folder (``what`` it should be, e.g. "a
        raster file"): missing, a broken link (where it pointed), or a folder."""
        if not os.path.exists(path):
            raise cls.missing(path)
        if os.path.isdir(path):
            raise cls(path, f"is a folder, not {what}")


class UnreadableFilesError(InputFileError):
    """Files of an input that cannot be read or decoded, or series that cannot be run (missing
    slices), found while summarising the rest (``sr-domains info`` of a DICOM folder): the
    message names the first; ``report`` is the summary (text or JSON-ready data), which the
    CLI prints before the error."""

    def __init__(self, first: InputFileError, n_more: int, report: Any) -> None:
        more = f" (and {n_more} more problem(s), listed)" if n_more else ""
        super().__init__(first.path, first.problem + more)
        self.report = report


class GeometryError(SRDomainsError, ValueError):
    """Spatial metadata is missing, inconsistent, or unsupported (rotated, GCP-only, oblique...)."""


class OutputExistsError(SRDomainsError, FileExistsError):
    """The output path exists and overwriting was not requested."""

    def __init__(self, path: str | PathLike[str], why: str = "") -> None:
        self.path = str(path)
        self.why = why  # e.g. "made with other weights (...)": why a resume does not skip it
        super().__init__(str(self))

    def __str__(self) -> str:
        why = f" ({self.why})" if self.why else ""
        return f"{self.path}: output exists{why}; pass --overwrite (Python: overwrite=True)"


class UnsafeOutputError(SRDomainsError, ValueError):
    """The output would replace or delete an input or files sr_domains did not write."""

    def __init__(self, path: str | PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class OutputBusyError(SRDomainsError, BlockingIOError):
    """Another process is writing the same output (its lock is held)."""

    def __init__(self, path: str | PathLike[str]) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: another sr-domains run is writing this output")

    def __str__(self) -> str:
        return f"{self.path}: another sr-domains run is writing this output"


class MissingDependencyError(SRDomainsError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, feature: str | None = None) -> None:
        what = f" for {feature}" if feature else ""
        msg = (
            f"{package} is required{what} but is not installed; "
            f'install it with: pip install "sr-domains[{extra}]"'
        )
        super().__init__(msg, name=package)
        self.package = package
        self.extra = extra


#: Errors about one input of a batch (its content, bands, geometry, or its output being
#: unsafe, existing or busy): the batch records them for that input and goes on, sequential or
#: on Dask (where they are not retried: they would recur). Others stop a sequential batch.
INPUT_ERRORS: tuple[type[SRDomainsError], ...] = (
    InputFileError,
    ConfigError,
    GeometryError,
    OutputExistsError,
    OutputBusyError,
    UnsafeOutputError,
)


def require(module: str, extra: str, feature: str | None = None):
    """Import and return an optional dependency, or raise :class:`MissingDependencyError`."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module.split(".")[0], extra, feature) from exc


_GDAL_VIRTUAL = re.compile(
    r"^/vsi(mem|zip|gzip|tar|7z|rar|curl|s3|gs|az|adls|oss|swift|hdfs|webhdfs|stdin|stdout|"
    r"subfile|sparse|crypt|cached)(_streaming)?(/|$)"
)


def is_gdal_virtual(path: str | PathLike[str]) -> bool:
    """True for a GDAL virtual file system path (``/vsizip/...``, ``/vsimem/...``)."""
    return bool(_GDAL_VIRTUAL.match(str(path)))
