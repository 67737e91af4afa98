"""A NIfTI-1 pair (``.hdr``/``.img``) is refused with a message that says what to do: it read
``not a NIfTI image (Nifti1Pair)``, as if the file were damaged. Real files (nibabel)."""

from __future__ import annotations

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from sr_domains.cli import main  # noqa: E402


@pytest.mark.parametrize("forced", [[], ["--domain", "nifti"]])
@pytest.mark.parametrize("name", ["p.hdr", "p.img"])
def test_a_nifti_pair_is_refused_with_the_way_out(tmp_path, capsys, name, forced):
    nib.save(nib.Nifti1Pair(np.ones((8, 8, 3), np.float32), np.eye(4)), tmp_path / "p.hdr")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code = main(
        ["upscale", str(tmp_path / name), str(tmp_path / "out.nii.gz"), "--scale", "2", *forced]
    )
    err = capsys.readouterr().err
    assert code != 0 and "NIfTI pair (.hdr/.img) is not supported" in err and ".nii.gz" in err
    assert name in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written
