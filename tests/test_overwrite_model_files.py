"""``export --overwrite`` and ``save_checkpoint(overwrite=True)`` replace only a model file of
the format they write: a training checkpoint (``last.pt``, the resume state), a state dict, a
TorchScript file at a ``.pt2`` name... are refused, untouched, named for what they are."""

from __future__ import annotations

import importlib.util
import warnings
import zipfile

import pytest
import torch

from sr_domains import create_model, save_checkpoint
from sr_domains.cli import main
from sr_domains.errors import UnsafeOutputError
from sr_domains.model_files import kind


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Real files of every kind, written by torch itself, and our weights."""
    d = tmp_path_factory.mktemp("models")
    model = create_model("srcnn", in_channels=1, scale=2)
    net = torch.nn.Conv2d(1, 1, 3)
    opt = torch.optim.Adam(net.parameters())
    net(torch.zeros(1, 1, 8, 8)).sum().backward()
    opt.step()
    torch.save({"step": 2, "model": net.state_dict(), "optimizer": opt.state_dict()}, d / "ck")
    torch.save(net.state_dict(), d / "sd")
    torch.save(net.state_dict(), d / "legacy", _use_new_zipfile_serialization=False)
    with warnings.catch_warnings():  # (torch.jit.save is deprecated in torch 2.13)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), d / "ts")
    torch.export.save(torch.export.export(net, (torch.zeros(1, 1, 8, 8),)), d / "ep")
    with zipfile.ZipFile(d / "old-ep", "w") as z:  # (torch.export.save before torch 2.6)
        for name in ("serialized_exported_program.json", "serialized_state_dict.pt", "version"):
            z.writestr(name, b"{}")
    save_checkpoint(model, d / "st")
    (d / "weights.safetensors").write_bytes((d / "st").read_bytes())
    return d


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("ck", "a training checkpoint (torch.save, with its resume state)"),
        ("sd", "a torch.save file (a state dict or checkpoint)"),
        ("legacy", "a pickle (a legacy torch.save file)"),
        ("ts", "a TorchScript file"),
        ("ep", "a torch.export ExportedProgram"),
        ("old-ep", "a torch.export ExportedProgram"),  # (entries at the root, no top folder)
        ("st", "a safetensors file"),
    ],
)
def test_kind_names_a_model_file_by_its_layout(files, name, what):
    assert kind(files / name) == what


@pytest.mark.parametrize(
    ("out", "src", "what"),
    [
        ("last.pt", "ck", "not a TorchScript file: it is a training checkpoint"),
        ("model.pth", "sd", "not a TorchScript file: it is a torch.save file"),
        ("model.pt", "legacy", "not a TorchScript file: it is a pickle"),
        ("model.pt", "ep", "not a TorchScript file: it is a torch.export ExportedProgram;"),
        ("model.pt", "st", "not a TorchScript file: it is a safetensors file;"),
        ("model.pt2", "sd", "not a torch.export ExportedProgram file: it is a torch.save"),
        ("model.pt2", "ts", "not a torch.export ExportedProgram file: it is a TorchScript"),
        pytest.param(
            "model.onnx",
            "ts",
            "not an ONNX file: it is a TorchScript file;",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("onnx") is None, reason="needs onnx (export extra)"
            ),
        ),
    ],
)
def test_export_overwrite_refuses_what_is_not_an_export_of_its_format(
    files, tmp_path, capsys, out, src, what
):
    """``export --weights W runs/X/last.pt --overwrite`` replaced the resume state with
    TorchScript (any zip or pickle passed for .pt/.pth/.pt2)."""
    dst = tmp_path / "runs" / "X" / out
    dst.parent.mkdir(parents=True)
    dst.write_bytes(data := (files / src).read_bytes())
    argv = ["export", "--weights", str(files / "weights.safetensors"), str(dst), "--overwrite"]
    argv += ["--format", "torchscript"] if out.endswith(".pth") else []
    assert main([*argv, "--no-check"]) == 1
    err = capsys.readouterr().err
    assert f"{dst}: exists and is {what}" in err and "never replaced, even with --overwrite" in err
    assert dst.read_bytes() == data and sorted(p.name for p in dst.parent.iterdir()) == [out]


@pytest.mark.parametrize(("out", "src"), [("m.pt", "ts"), ("m.pt2", "ep"), ("m.pt2", "old-ep")])
def test_export_overwrite_replaces_an_export_of_its_format(files, tmp_path, out, src):
    dst = tmp_path / out
    dst.write_bytes((files / src).read_bytes())
    argv = ["export", "--weights", str(files / "weights.safetensors"), str(dst), "--overwrite"]
    assert main([*argv, "--no-check"]) == 0
    assert dst.read_bytes() != (files / src).read_bytes() and kind(dst) == kind(files / src)
    assert kind(dst) in ("a TorchScript file", "a torch.export ExportedProgram")


@pytest.mark.parametrize("src", ["ck", "sd", "ts", "ep"])
def test_save_checkpoint_overwrite_replaces_only_safetensors(files, tmp_path, src):
    """``save_checkpoint(model, "runs/X/last.pt", overwrite=True)`` replaced the training
    checkpoint (or a TorchScript file) with safetensors: the .pt suffix passed any zip."""
    model = create_model("srcnn", in_channels=1, scale=2)
    dst = tmp_path / ("last.pt" if src != "ep" else "m.pt2")
    dst.write_bytes(data := (files / src).read_bytes())
    with pytest.raises(UnsafeOutputError, match=r"not a safetensors file: it is a"):
        save_checkpoint(model, dst, overwrite=True)
    assert dst.read_bytes() == data
    dst.write_bytes((files / "st").read_bytes())
    save_checkpoint(model, dst, overwrite=True)  # (safetensors under any name: replaced)
    assert kind(dst) == "a safetensors file"
