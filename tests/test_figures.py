"""The figure scripts of examples/ draw from real-shaped inputs (battery JSON, training log)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_battery_figure(tmp_path):
    from sr_domains.train.battery import BatteryReport, Row

    rows = [
        Row("m", 2, case, "medical", 2, 30.0 + g, 30.0, 30.1, 0.9, 0.9, 0.9, psnr_adapted=31.0 + g)
        for case, g in (("bicubic", 1.5), ("gauss-0.8", 0.1))
    ]
    src = tmp_path / "b.json"
    src.write_text(json.dumps(BatteryReport(rows).to_dict()))
    out = tmp_path / "fig" / "bars.png"
    assert _load("battery_figure").main([str(src), str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _load("battery_figure").main([str(src)]) == 2  # usage


def test_training_curve(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("step,lr,loss,sec\n100,0.001,0.05,1\n200,0.001,0.04,2\n")
    out = tmp_path / "curve.png"
    assert _load("training_curve").main([str(out), str(run)]) == 0
    assert out.stat().st_size > 1000
