"""``sr-domains export`` prints only the written path on stdout (details on stderr, none with
-q; no exporter chatter), and an ExportedProgram takes the model's smallest input."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from sr_domains.checkpoint import save_checkpoint
from sr_domains.cli import main
from sr_domains.export import export_model, run_exported
from sr_domains.models import create_model

pytestmark = pytest.mark.usefixtures("one_thread")
HAS_DYNAMO_ONNX = all(
    importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime", "onnxscript")
)


def test_cli_export_prints_the_path_alone_on_stdout(tmp_path, capfd):
    out = tmp_path / "gray.pt"
    assert main(["export", "--weights", "sr-lite-gray-x2", str(out)]) == 0
    got = capfd.readouterr()
    assert got.out == f"{out}\n"
    assert "torchscript, max |diff|" in got.err
    assert main(["-q", "export", "--weights", "sr-lite-gray-x2", str(out), "--overwrite"]) == 0
    assert capfd.readouterr() == (f"{out}\n", "")


@pytest.mark.skipif(not HAS_DYNAMO_ONNX, reason="needs onnx, onnxruntime and onnxscript")
def test_dynamo_export_prints_no_exporter_lines(tmp_path, capfd):
    weights = tmp_path / "srcnn.safetensors"
    save_checkpoint(create_model("srcnn", in_channels=1, scale=2, features=(8, 4)), weights)
    out = tmp_path / "d.onnx"
    assert main(["-q", "export", "--weights", str(weights), "--dynamo", str(out)]) == 0
    assert capfd.readouterr().out == f"{out}\n"  # no "[torch.onnx] Obtain model graph..."


def test_exported_program_of_a_pixel_unshuffle_rrdb_takes_a_2x2_input(tmp_path):
    model = create_model(
        "rrdb", in_channels=3, scale=2, pixel_unshuffle=True, num_block=1, num_feat=8,
        num_grow_ch=4,
    ).eval()  # fmt: skip
    dst = tmp_path / "u.pt2"
    export_model(model, dst, "exported-program")
    for shape in [(1, 3, 2, 2), (2, 3, 2, 6), (1, 3, 6, 2)]:
        x = torch.rand(*shape)
        with torch.no_grad():
            want = model(x).numpy()
        np.testing.assert_allclose(run_exported(dst, "exported-program", x), want, atol=1e-6)
    assert model.unshuffle  # (the model itself is left as it was)
