"""Built-in offline corpora: files present, strict train / held-out split, usable datasets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_domains.errors import ConfigError
from sr_domains.train import corpora
from sr_domains.train.corpora import corpus_files, get_corpus, heldout_files, list_corpora

TRAIN = [n for n in list_corpora() if get_corpus(n).split == "train"]
HELDOUT = [n for n in list_corpora() if get_corpus(n).split == "heldout"]


def present(name: str) -> list:
    try:
        return corpus_files(name)
    except OSError as exc:  # nothing of it in this installation
        pytest.skip(str(exc))


def test_names_and_unknown_corpus():
    assert {"gray-train", "gray-heldout", "rgb-train", "rgb-heldout"} <= set(list_corpora())
    with pytest.raises(ConfigError, match="unknown corpus 'grey'; available: gray-heldout"):
        corpus_files("grey")


@pytest.mark.parametrize("name", list_corpora())
def test_listed_files_exist(name):
    files = present(name)
    assert files and all(f.exists() for f in files)
    assert len(set(files)) == len(files)


def available(name: str) -> list:
    try:
        return corpus_files(name)
    except OSError:
        return []


def test_train_and_heldout_are_disjoint():
    train = {f.resolve() for n in TRAIN for f in available(n)}
    held = {f.resolve() for f in heldout_files()}
    assert {f.resolve() for n in HELDOUT for f in available(n)} <= held
    assert train and not train & held
    # no training file lies inside a held-out folder (DICOM series are folders)
    assert not any(h in t.parents for t in train for h in held)
    shared = corpora.shared_data_dir().resolve()
    assert not any(shared in t.parents for t in train)


def test_example_sample_is_held_out():
    sample = corpora.repo_root() / "examples" / "data" / "sample.tif"
    if not sample.exists():
        pytest.skip("examples/data/sample.tif is not present")
    assert sample.resolve() in {f.resolve() for f in heldout_files()}


def test_missing_files_are_skipped_and_an_empty_corpus_is_an_error(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(corpora, "bundled_data_dir", lambda: tmp_path / "absent")
    with pytest.raises(OSError, match="corpus 'rgb-heldout' has no files"):
        corpus_files("rgb-heldout")
    assert "absent here" in caplog.text


@pytest.mark.parametrize(("name", "channels"), [("gray-train", 1), ("rgb-heldout", 3)])
def test_corpus_builds_a_working_dataset(name, channels):
    from sr_domains.train.data import DataConfig, PatchDataset

    pytest.importorskip("PIL")
    pytest.importorskip("rasterio")
    pytest.importorskip("pydicom")
    pytest.importorskip("nibabel")
    files = present(name)
    ds = PatchDataset(DataConfig(corpus=name, patch_size=32, patches_per_epoch=6), scale=2)
    assert ds.channels == channels
    assert len(ds.sources) + len(ds.skipped) == len(files)  # one input per file or series
    kinds = {s.spec.kind for s in ds.sources}
    if name == "gray-train":
        assert {"image", "dicom", "nifti"} <= kinds
    for i in range(len(ds)):
        item = ds[i]
        assert item["hr"].shape == (channels, 32, 32) and torch.isfinite(item["hr"]).all()
        assert item["valid"].all()
    assert name in ds.describe()
    assert np.isfinite([s.fill for s in ds.sources]).all()


def test_shared_data_dir_follows_the_environment(tmp_path, monkeypatch):
    from sr_domains.train.corpora import shared_data_dir

    monkeypatch.setenv("SR_DOMAINS_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path
    monkeypatch.delenv("SR_DOMAINS_DATA")
    assert shared_data_dir().parts[-2:] == ("shared", "data")


def test_heldout_corpora_need_no_checkout(monkeypatch, tmp_path):
    """The README's held-out table is computed on files an installed wheel has: the bundled
    samples (with their licence file) and pydicom's test files; nothing from ../shared."""
    monkeypatch.setenv("SR_DOMAINS_DATA", str(tmp_path / "absent"))
    bundled = corpora.bundled_data_dir()
    assert (bundled / "LICENSES.md").is_file()
    for name in HELDOUT:
        for where, rel in get_corpus(name).files:
            assert where in ("bundled", "pydicom", "nibabel"), (name, where, rel)
            if where == "bundled":
                assert (bundled / rel).is_file() and rel in (bundled / "LICENSES.md").read_text()
    pytest.importorskip("pydicom")
    assert len(corpus_files("gray-heldout")) == 3 and len(corpus_files("rgb-heldout")) == 2


def test_battery_files_are_held_out():
    from sr_domains.train.battery import SETS

    held = {f.resolve() for f in heldout_files()}
    for entries in SETS.values():
        for where, rel, _ in entries:
            base = corpora._location(where)
            path = None if base is None else base / rel
            if path is not None and path.exists():
                assert path.resolve() in held, (where, rel)
