"""The names of what a training run writes into its folder (``out_dir/name/``), shared by
the run folder's set-up (:mod:`sr_domains.train.run_files`) and the check of the config's
inputs against it (:mod:`sr_domains.train.run_inputs`)."""

from __future__ import annotations

import re

#: What a run writes into its folder (``tb``: TensorBoard events, a folder).
RUN_FILES = ("last.pt", "log.csv", "val.csv", "weights.safetensors", "config.yaml")
RUN_DIRS = ("tb",)
#: A temporary a run writes beside one of :data:`RUN_FILES` (:func:`atomic_torch_save`, the CSV
#: logs, :func:`~sr_domains.checkpoint.save_checkpoint`): ``.NAME.PID.XXXXXXXX.tmp``.
_NAMES = "|".join(map(re.escape, RUN_FILES))
RUN_TEMP = re.compile(rf"\.(?:{_NAMES})\.[0-9]+\.[0-9a-f]{{8}}\.tmp")


def is_run_entry(name: str) -> bool:
    """Whether ``name`` in a run folder is the run's: one of :data:`RUN_FILES`,
    :data:`RUN_DIRS` or a temporary (:data:`RUN_TEMP`) a killed run left."""
    return name in RUN_FILES or name in RUN_DIRS or RUN_TEMP.fullmatch(name) is not None


__all__ = ["RUN_DIRS", "RUN_FILES", "RUN_TEMP", "is_run_entry"]
