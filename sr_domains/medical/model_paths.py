"""Where a model saved by ``--save-model`` / ``save_model=`` may not go: inside a DICOM output
folder (:func:`check_model_outside`). Shared by the DICOM API, the isotropic API and the CLI."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError

PathLike = str | os.PathLike[str]


def check_model_outside(path: PathLike, folder: PathLike) -> None:
    """Refuse a ``--save-model`` file inside ``folder``, a DICOM output folder: it holds the
    derived series only, so the model would be a foreign entry that makes the run (and
    every later ``--overwrite`` into it) refuse the folder. Checked before any work; links
    are followed."""
    model = Path(os.path.realpath(os.path.abspath(path)))
    out = Path(os.path.realpath(os.path.abspath(folder)))
    if model.is_relative_to(out):
        raise ConfigError(
            f"{path}: --save-model inside the DICOM output folder {folder}, which holds the "
            "derived series only (the run and every later --overwrite would refuse the "
            "folder); save the model outside it"
        )


__all__ = ["check_model_outside"]
