"""UpscaleOptions refuses what the CLI would: an on/off field that is not a bool (the string
"false" is truthy, so ``overwrite="false"`` replaced an existing output through run_nifti), and
bands that are not band numbers (a number out of range is the reader's to name, with the
file's range); a weights string becomes a Path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sr_domains.errors import ConfigError
from sr_domains.options import UpscaleOptions


@pytest.mark.parametrize("name", ["overwrite", "progress", "cog", "through_plane"])
@pytest.mark.parametrize("value", ["false", "no", 0, 1, None])
def test_on_off_fields_take_only_bools(name, value):
    with pytest.raises(ConfigError, match=f"{name} must be True or False"):
        UpscaleOptions(**{name: value})
    assert getattr(UpscaleOptions(**{name: np.bool_(True)}), name) is True


@pytest.mark.parametrize("bands", [(1.5,), ("1",), "12", [], ()])
def test_bands_are_one_based_numbers(bands):
    with pytest.raises(ConfigError, match="band"):
        UpscaleOptions(bands=bands)


def test_band_list_and_weights_string_are_normalised():
    o = UpscaleOptions(bands=[3, np.int64(1)], weights="w.safetensors")
    assert o.bands == (3, 1) and isinstance(o.bands[1], int)
    assert o.weights == Path("w.safetensors")


def test_overwrite_string_no_longer_replaces_an_output(tmp_path):
    """The probe's case, end to end: the existing output is untouched."""
    nib = pytest.importorskip("nibabel")
    from sr_domains.medical import run_nifti

    src, dst = tmp_path / "in.nii.gz", tmp_path / "out.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8, 2), np.float32), np.eye(4)), src)
    dst.write_bytes(b"keep")
    with pytest.raises(ConfigError):
        run_nifti(src, dst, UpscaleOptions(overwrite="false"))
    assert dst.read_bytes() == b"keep"
