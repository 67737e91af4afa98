"""The README's held-out table is what `sr-domains evaluate --corpus` prints (rounded to 0.01),
on files an installed package has (the bundled samples and pydicom's test files)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("rasterio")
pytest.importorskip("pydicom")
pytest.importorskip("nibabel")


def _rows() -> dict[str, dict[str, str]]:
    spec = importlib.util.spec_from_file_location(
        "check_wheel", REPO / "scripts" / "check_wheel.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return {r["name"]: r for r in mod.readme_rows()}


def test_readme_table_lists_every_shipped_model():
    from sr_domains.pretrained import list_pretrained

    assert set(_rows()) == {e.name for e in list_pretrained()}


@pytest.mark.parametrize("name", ["sr-lite-gray-x2", "sr-lite-rgb-x2"])
def test_readme_row_is_what_evaluate_prints(name, monkeypatch, tmp_path):
    from sr_domains.train.evaluate import evaluate

    row = _rows()[name]
    monkeypatch.setenv("SR_DOMAINS_DATA", str(tmp_path / "no-checkout"))  # bundled files only
    summary = evaluate(model=name, corpus=row["corpus"], device="cpu").summary
    assert summary["psnr_bicubic"] == pytest.approx(float(row["bicubic"]), abs=0.0051)
    assert summary["psnr"] == pytest.approx(float(row["sr"]), abs=0.0051)
    assert summary["psnr_gain_db"] == pytest.approx(float(row["gain"]), abs=0.0051)
