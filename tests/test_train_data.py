"""Training patches: sources, per-file profiles, nodata, determinism, augmentation, volumes."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")
nib = pytest.importorskip("nibabel")
pytest.importorskip("pydicom")
Image = pytest.importorskip("PIL.Image")

from sr_domains.config import from_dict  # noqa: E402
from sr_domains.errors import ConfigError, InputFileError  # noqa: E402
from sr_domains.intensity import resolve_recipe  # noqa: E402
from sr_domains.medical import load_dicom_series  # noqa: E402
from sr_domains.testing.geo import make_geotiff  # noqa: E402
from sr_domains.testing.medical import make_dicom_series, make_nifti  # noqa: E402
from sr_domains.train import sources  # noqa: E402
from sr_domains.train.data import DataConfig, PatchDataset, load_images  # noqa: E402
from sr_domains.train.inputs import find_inputs  # noqa: E402

P = 16


def cfg(*paths, **kw) -> DataConfig:
    kw.setdefault("patch_size", P)
    kw.setdefault("patches_per_epoch", 12)
    return DataConfig(paths=tuple(str(p) for p in paths), **kw)


def png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def texture(h: int, w: int, channels: int = 0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (h, w, channels) if channels else (h, w)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def raster(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Whole raster values and per-band validity (file nodata, NaN), read independently."""
    with rasterio.open(path) as d:
        v = d.read()
        ok = np.isfinite(v) if v.dtype.kind == "f" else np.ones(v.shape, bool)
        if d.nodata is not None and not np.isnan(d.nodata):
            ok &= v != d.nodata
    return v, ok


def whole_file_normalized(values, valid, recipe: str) -> np.ndarray:
    return resolve_recipe(recipe).fit(values, valid_mask=valid).normalize(values)


def dihedral(a: np.ndarray, rot: int, flip: bool) -> np.ndarray:
    out = np.rot90(a, rot, axes=(1, 2))
    return out[:, :, ::-1] if flip else out


# -- values: per-file profile, shapes ---------------------------------------------------------
def test_geotiff_patches_use_the_profile_fitted_on_the_whole_file(tmp_path):
    f = make_geotiff(tmp_path / "s.tif", width=80, height=64, count=3, dtype="uint16")
    c = cfg(f, augment=False, profile="percentile:2,98")
    ds = PatchDataset(c, scale=2)
    values, valid = raster(f)
    norm = whole_file_normalized(values, valid, c.profile)
    assert ds.channels == 3 and len(ds) == 12
    per_patch_differs = False
    for i in range(len(ds)):
        item, info = ds[i], ds.patch_info(i)
        assert item["hr"].dtype == torch.float32 and item["hr"].shape == (3, P, P)
        assert item["valid"].dtype == torch.bool and item["valid"].shape == (1, P, P)
        window = np.s_[:, info.y : info.y + P, info.x : info.x + P]
        np.testing.assert_allclose(item["hr"].numpy(), norm[window], rtol=1e-6, atol=1e-6)
        own = whole_file_normalized(values[window], None, c.profile)  # what per-patch would give
        per_patch_differs |= not np.allclose(own, item["hr"].numpy(), atol=1e-3)
    assert per_patch_differs
    fitted = resolve_recipe(c.profile).fit(values, valid_mask=valid)
    np.testing.assert_allclose(ds.sources[0].profile.scale, fitted.scale, rtol=1e-12)


def test_describe_names_files_profile_and_patch_size(tmp_path):
    a = png(tmp_path / "a.png", texture(40, 40))
    b = make_geotiff(tmp_path / "b.tif", width=40, height=40)
    text = PatchDataset(cfg(a, b), scale=2).describe()
    for part in ("a.png", "b.tif", "percentile:0.5,99.5", f"{P}x{P}", "2 input(s)"):
        assert part in text


# -- nodata --------------------------------------------------------------------------------------
def test_no_patch_exceeds_max_invalid_fraction(tmp_path):
    f = make_geotiff(tmp_path / "n.tif", width=64, height=64, count=2, nodata=0)
    _, valid = raster(f)
    pix_valid = valid.all(axis=0)
    assert not pix_valid.all()  # the generator wrote a nodata collar
    strict = PatchDataset(cfg(f, augment=False, patches_per_epoch=40), scale=2)
    for i in range(len(strict)):
        info = strict.patch_info(i)
        assert strict[i]["valid"].all()
        assert pix_valid[info.y : info.y + P, info.x : info.x + P].all()
    loose = PatchDataset(cfg(f, max_invalid_fraction=0.3, patches_per_epoch=60), scale=2)
    fractions = []
    for i in range(len(loose)):
        item = loose[i]
        fractions.append(1 - item["valid"].float().mean().item())
        assert torch.isfinite(item["hr"]).all()
    assert max(fractions) <= 0.3
    assert max(fractions) > 0  # partly invalid patches are allowed, and do occur


def test_nan_pixels_are_invalid_and_filled(tmp_path):
    f = make_geotiff(tmp_path / "f.tif", width=64, height=48, dtype="float32", nan_fraction=0.1)
    values, _ = raster(f)
    ds = PatchDataset(
        cfg(f, augment=False, max_invalid_fraction=0.5, patches_per_epoch=30), scale=2
    )
    src = ds.sources[0]
    seen_nan = False
    for i in range(len(ds)):
        item, info = ds[i], ds.patch_info(i)
        raw = values[:, info.y : info.y + P, info.x : info.x + P]
        nan = np.isnan(raw).any(axis=0)
        np.testing.assert_array_equal(item["valid"][0].numpy(), ~nan)
        hr = item["hr"].numpy()
        assert np.isfinite(hr).all()
        np.testing.assert_allclose(hr[0][nan], src.fill[0])
        seen_nan |= nan.any()
    assert seen_nan


def test_subsampled_raster_grid_keeps_the_exact_rule(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "RASTER_SAMPLE_VALUES", 500)  # force a coarse validity grid
    f = make_geotiff(tmp_path / "big.tif", width=96, height=80, nodata=0)
    ds = PatchDataset(cfg(f, augment=False, patches_per_epoch=30), scale=2)
    _, fy, fx = ds.sources[0].grid(0, ds._cache)
    assert fy > 1 and fx > 1
    pix_valid = raster(f)[1][0]
    for i in range(len(ds)):
        info = ds.patch_info(i)
        assert pix_valid[info.y : info.y + P, info.x : info.x + P].all()


def test_all_nodata_file_is_skipped_with_a_clear_error(tmp_path):
    bad = tmp_path / "empty.tif"
    profile = dict(driver="GTiff", width=32, height=32, count=1, dtype="uint8", nodata=0)
    profile.update(crs="EPSG:32633", transform=rasterio.Affine(10, 0, 0, 0, -10, 320))
    with rasterio.open(bad, "w", **profile) as d:
        d.write(np.zeros((1, 32, 32), np.uint8))
    with pytest.raises(InputFileError, match=r"no usable training files: empty\.tif.*no valid"):
        PatchDataset(cfg(bad), scale=2)
    good = make_geotiff(tmp_path / "good.tif", width=32, height=32)
    ds = PatchDataset(cfg(bad, good), scale=2)
    assert [s.name for s in ds.sources] == ["good.tif"]
    assert ds.skipped[0][0] == "empty.tif" and "empty.tif" in ds.describe()


def test_too_small_inputs_are_skipped(tmp_path):
    small = png(tmp_path / "small.png", texture(10, 40))
    with pytest.raises(InputFileError, match=r"small\.png: smaller \(40x10\)"):
        PatchDataset(cfg(small), scale=2)


# -- determinism and augmentation ----------------------------------------------------------------
def mixed_inputs(tmp_path: Path) -> list[Path]:
    return [
        make_geotiff(tmp_path / "r.tif", width=48, height=40, nodata=0),
        png(tmp_path / "g.png", texture(36, 44, seed=1)),
        make_nifti(tmp_path / "v.nii.gz", shape=(24, 20, 6), spacing=(1.0, 1.0, 3.0)),
    ]


def stack(ds, n=None) -> torch.Tensor:
    return torch.stack([ds[i]["hr"] for i in range(n or len(ds))])


def test_same_seed_epoch_index_gives_the_same_patch(tmp_path):
    c = cfg(*mixed_inputs(tmp_path))
    a, b = PatchDataset(c, scale=2), PatchDataset(c, scale=2)
    assert torch.equal(stack(a), stack(b))
    assert torch.equal(a[5]["hr"], a[5]["hr"])
    assert {a.patch_info(i).source for i in range(len(a))} == {0, 1, 2}
    first = stack(a)
    a.set_epoch(1)
    assert not torch.equal(stack(a), first)
    a.set_epoch(0)
    assert torch.equal(stack(a), first)
    assert not torch.equal(stack(PatchDataset(c, scale=2, seed=7)), first)
    assert a.patch_info(3) == a.patch_info(3)


def test_dataloader_workers_do_not_change_the_patches(tmp_path):
    ds = PatchDataset(cfg(*mixed_inputs(tmp_path), patches_per_epoch=8), scale=2)
    ds.set_epoch(2)

    def run(workers: int) -> tuple[torch.Tensor, torch.Tensor]:
        loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=workers)
        batches = list(loader)
        return torch.cat([b["hr"] for b in batches]), torch.cat([b["valid"] for b in batches])

    hr0, v0 = run(0)
    hr2, v2 = run(2)
    assert torch.equal(hr0, hr2) and torch.equal(v0, v2)
    assert hr0.shape == (8, 1, P, P)


def test_evicted_or_pickled_data_is_reloaded_identically(tmp_path):
    paths = mixed_inputs(tmp_path)
    ref = stack(PatchDataset(cfg(*paths), scale=2))
    tiny_cache = PatchDataset(cfg(*paths, cache_mb=0), scale=2)  # reloads on every switch
    assert torch.equal(stack(tiny_cache), ref)
    used = PatchDataset(cfg(*paths), scale=2)
    stack(used, 4)  # opens the raster handle and fills the cache
    clone = pickle.loads(pickle.dumps(used))  # what spawned workers get
    assert clone._cache.nbytes == 0
    assert torch.equal(stack(clone), ref)


def test_min_std_redraws_flat_patches(tmp_path):
    img = texture(40, 48, seed=6)
    img[:, :24] = 128  # left half flat
    f = png(tmp_path / "half.png", img)
    ds = PatchDataset(cfg(f, min_std=0.05, patches_per_epoch=30), scale=2)
    assert all(ds[i]["hr"].std() >= 0.05 for i in range(len(ds)))
    assert max(ds.patch_info(i).tries for i in range(len(ds))) > 1


def test_weighting_by_file_or_by_area(tmp_path):
    small = png(tmp_path / "small.png", texture(P, P, seed=7))  # one position only
    big = png(tmp_path / "big.png", texture(64, 64, seed=8))
    by_file = PatchDataset(cfg(small, big, patches_per_epoch=40), scale=2)
    by_area = PatchDataset(cfg(small, big, patches_per_epoch=40, weighting="area"), scale=2)
    n_file = sum(by_file.patch_info(i).source == 0 for i in range(40))
    n_area = sum(by_area.patch_info(i).source == 0 for i in range(40))
    assert 10 <= n_file <= 30 and n_area <= 2


def test_augmentations_are_dihedral(tmp_path):
    f = png(tmp_path / "t.png", texture(40, 48, seed=3))
    plain = PatchDataset(cfg(f, augment=False, patches_per_epoch=24), scale=2)
    aug = PatchDataset(cfg(f, augment=True, patches_per_epoch=24), scale=2)
    used = set()
    for i in range(len(aug)):
        pi, ai = plain.patch_info(i), aug.patch_info(i)
        assert (pi.plane, pi.y, pi.x) == (ai.plane, ai.y, ai.x)
        expected = dihedral(plain[i]["hr"].numpy(), ai.rot, ai.flip)
        np.testing.assert_array_equal(aug[i]["hr"].numpy(), expected)
        used.add((ai.rot, ai.flip))
    assert len(used) > 2


# -- volumes ---------------------------------------------------------------------------------------
def test_nifti_planes_follow_the_in_plane_axes(tmp_path):
    f = make_nifti(tmp_path / "v.nii.gz", shape=(24, 20, 18), spacing=(1.0, 1.0, 3.0))
    vol = np.asarray(nib.load(f).dataobj, dtype=np.float32)
    norm = whole_file_normalized(vol[None], None, DataConfig().profile)[0]
    ds = PatchDataset(cfg(f, augment=False, patches_per_epoch=20), scale=2)
    src = ds.sources[0]
    assert src.axes == (0, 1) and src.n_planes == 18 and src.shape == (24, 20)
    for i in range(len(ds)):
        info = ds.patch_info(i)
        expected = norm[info.y : info.y + P, info.x : info.x + P, info.plane]
        np.testing.assert_allclose(ds[i]["hr"][0].numpy(), expected, rtol=1e-6, atol=1e-6)
    other = PatchDataset(cfg(f, augment=False, slice_axes=(1, 2)), scale=2)
    assert other.sources[0].shape == (20, 18) and other.sources[0].n_planes == 24
    info = other.patch_info(0)
    expected = norm[info.plane, info.y : info.y + P, info.x : info.x + P]
    np.testing.assert_allclose(other[0]["hr"][0].numpy(), expected, rtol=1e-6, atol=1e-6)


def test_4d_nifti_uses_every_time_point(tmp_path):
    f = make_nifti(tmp_path / "t.nii", shape=(20, 20, 4), spacing=(1, 1, 2), n_volumes=3)
    src = PatchDataset(cfg(f), scale=2).sources[0]
    assert (src.n_times, src.n_slices, src.n_planes) == (3, 4, 12)


def test_dicom_series_is_read_slice_wise(tmp_path):
    make_dicom_series(tmp_path / "ser", n_slices=5, rows=24, cols=20)
    vol = load_dicom_series(tmp_path / "ser").read_volume()  # (slice, row, column)
    norm = whole_file_normalized(vol[None], None, DataConfig().profile)[0]
    ds = PatchDataset(cfg(tmp_path / "ser", augment=False), scale=2)
    (src,) = ds.sources
    assert src.spec.kind == "dicom" and src.axes == (1, 2) and src.n_planes == 5
    for i in range(len(ds)):
        info = ds.patch_info(i)
        expected = norm[info.plane, info.y : info.y + P, info.x : info.x + P]
        np.testing.assert_allclose(ds[i]["hr"][0].numpy(), expected, rtol=1e-6, atol=1e-6)


# -- images and channels ---------------------------------------------------------------------------
def test_rgb_to_luma_and_channel_rules(tmp_path):
    rgb = texture(32, 36, 3, seed=4)
    f = png(tmp_path / "c.png", rgb)
    ds = PatchDataset(cfg(f, channels=1, augment=False), scale=2)
    assert ds.channels == 1 and "luma" in ds.describe()
    y = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.float32)
    norm = whole_file_normalized(y[None], None, ds.config.profile)[0]
    info = ds.patch_info(0)
    np.testing.assert_allclose(
        ds[0]["hr"][0].numpy(), norm[info.y : info.y + P, info.x : info.x + P], atol=1e-5
    )
    gray = png(tmp_path / "g.png", texture(32, 36))
    with pytest.raises(ConfigError, match=r"g\.png has 1 channel.*c\.png has 3"):
        PatchDataset(cfg(f, gray), scale=2)
    with pytest.raises(InputFileError, match=r"g\.png: has 1 channel\(s\), 3 required"):
        PatchDataset(cfg(gray, channels=3), scale=2)
    assert PatchDataset(cfg(f, gray, channels=1), scale=2).channels == 1
    red = PatchDataset(cfg(f, bands=(1,), augment=False), scale=2)
    norm_r = whole_file_normalized(rgb[None, ..., 0], None, ds.config.profile)[0]
    info = red.patch_info(0)
    np.testing.assert_allclose(
        red[0]["hr"][0].numpy(), norm_r[info.y : info.y + P, info.x : info.x + P], atol=1e-6
    )


def test_transparent_pixels_are_invalid(tmp_path):
    rgba = texture(32, 32, 4, seed=5)
    rgba[..., 3] = 255
    rgba[:, :12, 3] = 0
    f = png(tmp_path / "a.png", rgba)
    ds = PatchDataset(
        cfg(f, max_invalid_fraction=0.5, augment=False, patches_per_epoch=20), scale=2
    )
    assert ds.channels == 3
    for i in range(len(ds)):
        info = ds.patch_info(i)
        cols = np.arange(info.x, info.x + P) >= 12
        np.testing.assert_array_equal(ds[i]["valid"][0].numpy(), np.broadcast_to(cols, (P, P)))


# -- sniffing and errors ---------------------------------------------------------------------------
def test_kinds_are_sniffed_per_file(tmp_path):
    root = tmp_path / "mix"
    (root / "sub").mkdir(parents=True)
    make_geotiff(root / "a.tif")
    png(root / "b.png", texture(20, 20))
    make_nifti(root / "sub" / "c.nii.gz", shape=(20, 16, 4))
    make_dicom_series(root / "sub" / "dcm", n_slices=3)
    for f in make_dicom_series(tmp_path / "other", n_slices=2):  # a second series, same folder
        f.rename(root / "sub" / "dcm" / f"b_{f.name}")
    (root / "notes.txt").write_text("not an image")
    specs = find_inputs([root])
    kinds = sorted((s.kind, s.path.name) for s in specs)
    assert kinds == [
        ("dicom", "dcm"),
        ("dicom", "dcm"),
        ("geotiff", "a.tif"),
        ("image", "b.png"),
        ("nifti", "c.nii.gz"),
    ]
    dicoms = [s for s in specs if s.kind == "dicom"]
    assert sorted(len(s.files) for s in dicoms) == [2, 3]
    assert dicoms[0].name != dicoms[1].name
    assert [s.kind for s in find_inputs([root / "a.tif"], kind="image")] == ["image"]
    assert [s.path.name for s in find_inputs([str(root / "*.png")])] == ["b.png"]
    with pytest.raises(InputFileError, match=r"notes\.txt: cannot tell"):
        find_inputs([root / "notes.txt"])
    with pytest.raises(InputFileError, match="matches no files"):
        find_inputs([str(root / "*.jpg")])
    with pytest.raises(InputFileError, match="no such file"):
        find_inputs([root / "missing.tif"])


def test_unreadable_input_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(InputFileError, match=r"broken\.png: not a readable image"):
        PatchDataset(cfg(bad), scale=2)


def test_config_is_strict_and_checked():
    c = from_dict(DataConfig, {"paths": ["a", "b"], "bands": [3, 2, 1], "slice_axes": [2, 0]})
    assert c.paths == ("a", "b") and c.bands == (3, 2, 1) and c.slice_axes == (0, 2)
    with pytest.raises(ConfigError, match="did you mean 'patch_size'"):
        from_dict(DataConfig, {"patchsize": 64})
    for bad in ({"kind": "jpeg"}, {"max_invalid_fraction": 1.0}, {"profile": "nope"}):
        with pytest.raises(ConfigError):
            DataConfig(**bad)
    with pytest.raises(ConfigError, match="unknown corpus 'x'; available: gray-heldout"):
        DataConfig(corpus="x")
    with pytest.raises(ConfigError, match="multiple of the scale 3"):
        DataConfig(patch_size=32).check(3)
    with pytest.raises(ConfigError, match="give paths"):
        PatchDataset(DataConfig(), scale=2)


# -- whole images for evaluation -------------------------------------------------------------------
def test_load_images_crops_rasters_and_picks_volume_slices(tmp_path):
    r = make_geotiff(tmp_path / "r.tif", width=90, height=60, nodata=0)
    v = make_nifti(tmp_path / "v.nii.gz", shape=(24, 20, 9), spacing=(1.0, 1.0, 3.0))
    images = load_images(cfg(r, v), max_pixels=80 * 50, multiple=4)
    names = [n for n, _, _ in images]
    assert names == ["r.tif", "v.nii.gz:slice=2", "v.nii.gz:slice=4", "v.nii.gz:slice=6"]
    (_, hr, valid), *slices = images
    assert hr.shape[0] == 1 and hr.shape[1] * hr.shape[2] <= 80 * 50 and valid is not None
    assert hr.shape[1] % 4 == 0 and hr.shape[2] % 4 == 0 and hr.dtype == np.float32
    values, ok = raster(r)
    y0, x0 = (60 - hr.shape[1]) // 2, (90 - hr.shape[2]) // 2
    window = np.s_[:, y0 : y0 + hr.shape[1], x0 : x0 + hr.shape[2]]
    np.testing.assert_array_equal(valid[0], ok.all(axis=0)[window[1:]])
    norm = whole_file_normalized(values, ok, DataConfig().profile)[window]
    np.testing.assert_allclose(hr[:, valid[0]], norm[:, valid[0]], atol=1e-6)
    for _, a, m in slices:
        assert a.shape == (1, 24, 20) and m is None


# -- which config section an error is about ------------------------------------------------
def test_data_errors_name_the_config_section_they_came_from(tmp_path):
    """Through ``train``: a config whose ``val.data`` points at an empty folder, or at files
    whose channels disagree, fails before step 1 with an error about ``val.data`` (not about
    the training data); the same faults in ``data`` name ``data``."""
    import yaml

    from sr_domains.train.config import load_train_config
    from sr_domains.train.trainer import train

    good = tmp_path / "train"
    good.mkdir()
    png(good / "t.png", texture(48, 48))
    empty = tmp_path / "empty"
    empty.mkdir()
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    png(mixed / "c.png", texture(32, 36, 3, seed=4))
    png(mixed / "g.png", texture(32, 36))

    def run(data: Path, val: Path, channels: int | None = 1) -> str:
        raw = {
            "name": "sections",
            "steps": 1,
            "batch_size": 2,
            "model": {"arch": "edsr", "in_channels": 1, "options": {"n_blocks": 1, "n_feats": 8}},
            "data": {"paths": [str(data)], "channels": channels, "patch_size": 16},
            "val": {"data": {"paths": [str(val)]}},
            "out_dir": str(tmp_path / "runs"),
            "threads": 1,
        }
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(raw))
        with pytest.raises((InputFileError, ConfigError)) as caught:
            train(load_train_config(path), progress=False)
        return str(caught.value)

    msg = run(good, empty)
    assert msg.startswith("val.data: ") and str(empty) in msg and "training" not in msg, msg
    msg = run(good, mixed)
    assert "val.data.channels" in msg and "training" not in msg, msg
    assert "set data.channels" not in msg, msg
    msg = run(empty, good)
    assert msg.startswith("data: no training inputs found") and "val.data" not in msg, msg
    msg = run(mixed, good, channels=None)
    assert "set data.channels" in msg and "val.data" not in msg, msg
    assert not (tmp_path / "runs" / "sections").exists()  # nothing left behind
