"""``--save-model`` inside a DICOM output folder is refused before any work: the model was
written there first, then the run (and every later ``--overwrite``) refused the folder for
holding an entry sr_domains did not write."""

from __future__ import annotations

import pytest

pytest.importorskip("pydicom")

from sr_domains.cli import main
from sr_domains.errors import ConfigError
from sr_domains.medical import make_isotropic
from sr_domains.testing.dicom import make_dicom_series


def _series(tmp_path):
    src = tmp_path / "dcm"
    make_dicom_series(
        src, n_slices=6, rows=24, cols=20, pixel_spacing=(0.9, 0.7), slice_spacing=3.0
    )
    return src


def test_make_isotropic_refuses_a_model_inside_its_dicom_output(tmp_path):
    src = _series(tmp_path)
    out = tmp_path / "iso"
    for where in ("m.safetensors", "sub/m.safetensors"):
        with pytest.raises(ConfigError, match="inside the DICOM output folder"):
            make_isotropic(src, out, steps=1, save_model=out / where)
        assert not out.exists()
    # beside the output folder: written, and the folder can be replaced later
    make_isotropic(src, out, steps=1, save_model=tmp_path / "m.safetensors")
    assert (tmp_path / "m.safetensors").is_file()
    make_isotropic(src, out, steps=1, overwrite=True)


@pytest.mark.parametrize(
    "flags", [["--adapt", "1", "--adapt-noise", "0"], ["--isotropic", "--steps", "1"]]
)
def test_the_cli_refuses_a_model_inside_its_dicom_output(tmp_path, capsys, flags):
    src = _series(tmp_path)
    out = tmp_path / "out"
    argv = ["upscale", str(src), str(out), *flags, "-q", "--no-progress"]
    assert main([*argv, "--save-model", str(out / "m.safetensors")]) == 2
    assert "inside the DICOM output folder" in capsys.readouterr().err
    assert not out.exists()
    # an existing output replaced with --overwrite: refused too, the folder left as it was
    assert main(argv) == 0
    before = sorted(p.name for p in out.iterdir())
    argv += ["--overwrite", "--save-model", str(out / "m.safetensors")]
    assert main(argv) == 2
    assert sorted(p.name for p in out.iterdir()) == before
