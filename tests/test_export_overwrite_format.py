"""``export_model(..., fmt, overwrite=True)`` re-checks an existing output by ``fmt`` once the
output is locked, as the first check does: an ExportedProgram at ``x.pt`` (a TorchScript
name) is replaced by a new ``exported-program`` export (it was refused by the suffix)."""

from __future__ import annotations

import pytest
import torch

from sr_domains import create_model
from sr_domains.errors import UnsafeOutputError
from sr_domains.export import export_model
from sr_domains.model_files import kind


def _exported_program(path):
    net = torch.nn.Conv2d(1, 1, 3)
    torch.export.save(torch.export.export(net, (torch.zeros(1, 1, 8, 8),)), path)
    assert kind(path) == "a torch.export ExportedProgram"
    return path.read_bytes()


def test_exported_program_at_pt_name_replaced_by_its_format(tmp_path):
    dst = tmp_path / "x.pt"
    old = _exported_program(dst)
    model = create_model("srcnn", in_channels=1, scale=2)
    with pytest.raises(UnsafeOutputError, match="not a TorchScript file"):  # (by its format)
        export_model(model, dst, "torchscript", overwrite=True, check=False)
    assert dst.read_bytes() == old
    result = export_model(model, dst, "exported-program", overwrite=True, check=False)
    assert result.path == dst and dst.read_bytes() != old
    assert kind(dst) == "a torch.export ExportedProgram"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pt"]
