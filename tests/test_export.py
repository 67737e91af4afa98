"""Export (ONNX, TorchScript, torch.export) and the ONNX Runtime backend (issue 12)."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch
from _model_cases import small

from sr_domains.array_api import upscale_array
from sr_domains.cli import main
from sr_domains.errors import ConfigError, MissingDependencyError, OutputExistsError
from sr_domains.export import export_model, read_card
from sr_domains.inference import Upscaler
from sr_domains.models import create_model, model_registry
from sr_domains.pretrained import list_pretrained, load_pretrained

ARCHS = model_registry().names()
HAS_ORT = importlib.util.find_spec("onnxruntime") is not None
HAS_ONNX = importlib.util.find_spec("onnx") is not None
needs_ort = pytest.mark.skipif(not (HAS_ORT and HAS_ONNX), reason="needs onnx + onnxruntime")


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(arch: str, scale: int = 2, **extra):
    return create_model(arch, in_channels=3, scale=scale, **{**small(arch), **extra})


def _eager(model, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(x).numpy()


def _inputs(model) -> list[torch.Tensor]:
    """Two sizes and batches (dynamic H, W and N), multiples of the model's size multiple."""
    g = torch.Generator().manual_seed(0)
    m = int(getattr(model, "size_multiple", 1))
    return [
        torch.rand(1, 3, 10 * m, 7 * m, generator=g),
        torch.rand(2, 3, 6 * m, 13 * m, generator=g),
    ]


@pytest.mark.parametrize("arch", ARCHS)
def test_torchscript_equals_eager_for_every_arch(arch):
    model = _model(arch)
    scripted = torch.jit.script(model)
    for x in _inputs(model):
        np.testing.assert_allclose(scripted(x).detach().numpy(), _eager(model, x), atol=1e-6)


@pytest.mark.parametrize(
    ("arch", "extra"),
    [
        pytest.param(a, {}, marks=pytest.mark.slow) if a == "rrdb" else (a, {}) for a in ARCHS
    ]  # (tracing RRDB's nested dense blocks takes seconds: the slow step exports it)
    + [
        pytest.param("rrdb", {"pixel_unshuffle": True}, marks=pytest.mark.slow),
        ("edsr", {"ca_pool": 5}),
    ],
)
def test_exported_program_with_dynamic_size_equals_eager(arch, extra, tmp_path):
    if extra.get("ca_pool"):
        extra["channel_attention"] = True
    model = _model(arch, **extra)
    dst = tmp_path / "m.pt2"
    result = export_model(model, dst, "exported-program")
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-5
    program = torch.export.load(str(dst)).module()
    for x in _inputs(model):
        np.testing.assert_allclose(program(x).detach().numpy(), _eager(model, x), atol=1e-5)
    assert read_card(dst)["arch"] == arch


@needs_ort
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("scale", [2, 3])
def test_onnxruntime_equals_torch_for_every_arch(arch, scale, tmp_path):
    import onnxruntime as ort

    model = _model(arch, scale)
    dst = tmp_path / "m.onnx"
    export_model(model, dst, "onnx")
    sess = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    for x in _inputs(model):
        y = sess.run(None, {"lr": x.numpy()})[0]
        np.testing.assert_allclose(y, _eager(model, x), atol=1e-4)


@needs_ort
@pytest.mark.parametrize("name", [e.name for e in list_pretrained()])
def test_shipped_weights_export_with_their_card(name, tmp_path):
    import onnx
    import onnxruntime as ort

    model = load_pretrained(name)
    dst = tmp_path / f"{name}.onnx"
    result = export_model(model, dst, "onnx")
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4
    props = {p.key: p.value for p in onnx.load(str(dst)).metadata_props}
    card = json.loads(props["sr_domains.card"])
    info = json.loads(props["sr_domains.info"])
    assert card["name"] == name and card["profile"] == model.card.profile
    assert (info["scale"], info["in_channels"], info["receptive_radius"]) == (
        model.scale,
        model.in_channels,
        model.receptive_radius(),
    )
    sess = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    x = torch.rand(1, model.in_channels, 45, 38, generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(sess.run(None, {"lr": x.numpy()})[0], _eager(model, x), atol=1e-4)


def test_torchscript_file_carries_the_card(tmp_path):
    model = load_pretrained("sr-lite-gray-x2")
    dst = tmp_path / "m.pt"
    export_model(model, dst, "torchscript")
    extra = {"sr_domains.card.json": ""}
    loaded = torch.jit.load(str(dst), _extra_files=extra)
    assert json.loads(extra["sr_domains.card.json"])["name"] == "sr-lite-gray-x2"
    x = torch.rand(1, 1, 21, 30)
    np.testing.assert_allclose(loaded(x).detach().numpy(), _eager(model, x), atol=1e-6)


def test_export_refuses_to_overwrite_and_rejects_bad_formats(tmp_path):
    model = _model("srcnn")
    dst = tmp_path / "m.pt"
    export_model(model, dst, "torchscript", check=False)
    with pytest.raises(OutputExistsError):
        export_model(model, dst, "torchscript")
    export_model(model, dst, "torchscript", overwrite=True)
    with pytest.raises(ConfigError, match="export format"):
        export_model(model, tmp_path / "m.x", "tflite")


@needs_ort
def test_onnxruntime_backend_goes_through_the_same_engine():
    """Tiling, profile and nodata are the engine's: both backends give the same array."""
    model = load_pretrained("sr-lite-rgb-x2")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4000, (3, 70, 90)).astype(np.uint16)
    mask = np.ones((70, 90), bool)
    mask[10:20, 30:45] = False
    kw = {"tile": 48, "valid_mask": mask, "nodata": 0, "profile": "range:0,4000"}
    ref = upscale_array(x, model, **kw).astype(int)
    got = upscale_array(x, model, backend="onnxruntime", **kw).astype(int)
    assert np.abs(got - ref).max() <= 1  # float32 rounding may flip one integer step
    assert (got[:, 20:40, 60:90] == 0).all()  # nodata kept


def test_missing_onnxruntime_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match=r"sr-domains\[onnx\]"):
        Upscaler(_model("srcnn"), backend="onnxruntime", tile=32)


@needs_ort
def test_cli_export(tmp_path, capsys):
    out = tmp_path / "lite.onnx"
    argv = ["export", "--weights", "sr-lite-gray-x2", str(out)]
    assert main(argv) == 0
    got = capsys.readouterr()
    assert got.out == f"{out}\n" and "onnx, max |diff|" in got.err
    assert read_card(out)["name"] == "sr-lite-gray-x2"
    assert main(argv) == 1  # exists
    assert "exists" in capsys.readouterr().err
    assert main(["export", "--weights", "nope", str(tmp_path / "a.onnx")]) == 2
    err = capsys.readouterr().err
    assert "--weights nope" in err and err.count("\n") == 1
    assert main(["export", "--weights", "sr-lite-gray-x2", str(tmp_path / "a.bin")]) == 2
    assert "pass --format" in capsys.readouterr().err


@needs_ort
def test_cli_upscale_geotiff_with_engine_options(tmp_path, capsys):
    """--backend/--threads/--max-memory reach the GeoTIFF engine; both backends agree."""
    rasterio = pytest.importorskip("rasterio")
    from sr_domains.testing.geo import make_geotiff

    src = make_geotiff(tmp_path / "in.tif", width=50, height=40, count=3, dtype="uint16")
    outs = {}
    for backend in ("torch", "onnxruntime"):
        dst = tmp_path / f"{backend}.tif"
        argv = ["upscale", str(src), str(dst), "--no-progress", "--backend", backend]
        argv += ["--threads", "1", "--max-memory", "256M", "--tile", "32"]
        assert main(argv) == 0, capsys.readouterr().err
        with rasterio.open(dst) as ds:
            outs[backend] = ds.read().astype(int)
    assert outs["torch"].shape == (3, 80, 100)
    assert np.abs(outs["torch"] - outs["onnxruntime"]).max() <= 1
    assert main(["upscale", str(src), str(tmp_path / "x.tif"), "--max-memory", "lots"]) == 2
    assert "max memory" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".pt", ".pt2"])
def test_a_failed_write_is_an_error_not_an_abort(tmp_path, suffix):
    """``ulimit -f`` (a full disk alike) while torch's own file writer wrote a TorchScript or
    ``.pt2`` file aborted the process (``terminate called after throwing an instance of
    'c10::Error'``, exit 134) and left its temporary and lock behind."""
    import signal
    import subprocess

    resource = pytest.importorskip("resource")
    (weights,) = [e.path for e in list_pretrained() if e.name == "sr-lite-gray-x2"]
    dst = tmp_path / f"m{suffix}"

    def limited() -> None:  # (in the child: a 100 kB file size limit, SIGXFSZ ignored)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    argv = [sys.executable, "-m", "sr_domains", "export", "--weights", str(weights), str(dst)]
    r = subprocess.run(
        [*argv, "--no-check"], capture_output=True, text=True, preexec_fn=limited, timeout=300
    )
    assert r.returncode == 1, r.stderr[-2000:]
    assert "File too large" in r.stderr and "terminate called" not in r.stderr
    assert list(tmp_path.iterdir()) == []
