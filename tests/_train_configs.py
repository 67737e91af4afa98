"""A tiny training config on generated PNGs, shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import yaml

from sr_domains.testing.images import make_pngs


def tiny_config_file(tmp_path: Path, out: str = "runs", **over: object) -> Path:
    """A YAML config of a 1-block EDSR on two 48 px PNGs (16 steps, validation every 4,
    checkpoint every 5); ``over`` replaces top-level keys. Written as ``tmp_path/OUT.yaml``."""
    data = make_pngs(tmp_path / "imgs", 2, 48, False)
    raw = {
        "name": "run",
        "steps": 16,
        "batch_size": 2,
        "model": {"arch": "edsr", "in_channels": 1, "options": {"n_blocks": 1, "n_feats": 8}},
        "data": {"paths": [str(data)], "patch_size": 16, "patches_per_epoch": 8},
        "val": {"data": {"paths": [str(data)]}, "every": 4, "max_images": 1},
        "out_dir": str(tmp_path / out),
        "log_every": 1,
        "checkpoint_every": 5,
        "threads": 1,
        **over,
    }
    path = tmp_path / f"{out.replace('/', '_')}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path
