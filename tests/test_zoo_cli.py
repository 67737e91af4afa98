"""`sr-domains models --inspect`, the messages for what is not supported, and the library
without spandrel (the optional ``zoo`` extra) or beside a torchvision whose C++ ops cannot load."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from _zoo_models import save  # skips the module without spandrel

from sr_domains.cli import main
from sr_domains.errors import CheckpointError
from sr_domains.pretrained import WEIGHTS_DIR

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore:torch.meshgrid:UserWarning")


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


def _fields(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def test_inspect_a_spandrel_checkpoint(tmp_path, capsys):
    path = save("compact", tmp_path)
    n_params = sum(v.numel() for v in torch.load(path, weights_only=True).values())
    assert main(["models", "--inspect", str(path)]) == 0
    f = _fields(capsys.readouterr().out)
    assert f["loader"].startswith("spandrel ")
    assert f["family"].startswith("RealESRGAN Compact (spandrel id Compact")
    assert f["arch"] == "spandrel:Compact (provenance name)"
    assert (f["scale"], f["channels"]) == ("x4", "3 in, 3 out")
    assert f["parameters"] == f"{n_params:,}"
    assert f["input range"].startswith("[0, 1] (RGB order)")
    assert f["receptive radius"] == "6 LR px"  # conv_first + 4 convs + conv_last
    assert f["tiling"].startswith("exact")
    assert "spandrel's main registry" in f["licence"]
    assert main(["models", "--inspect", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["arch"], report["scale"], report["n_params"]) == (
        "spandrel:Compact",
        4,
        n_params,
    )


def test_inspect_our_own_files(tmp_path, capsys):
    assert main(["models", "--inspect", str(WEIGHTS_DIR / "sr-lite-rgb-x2.safetensors")]) == 0
    f = _fields(capsys.readouterr().out)
    assert f["loader"] == "sr_domains checkpoint (model card)"
    assert (f["arch"], f["scale"], f["receptive radius"]) == (
        "edsr (provenance name)",
        "x2",
        "36 LR px",
    )
    assert f["licence"].startswith("sr_domains implementation")
    from sr_domains import create_model

    srcnn = create_model("srcnn", in_channels=1)
    sd = {k: v for k, v in srcnn.state_dict().items() if not k.startswith("norm_mean")}
    torch.save(sd, tmp_path / "srcnn_x3.pth")
    assert main(["models", "--inspect", str(tmp_path / "srcnn_x3.pth")]) == 0
    out = capsys.readouterr().out
    assert "family:           plain SRCNN" in out
    assert "assumed: scale=2, residual=False" in out
    assert "zero means assumed" in out


def test_unrecognised_file_lists_what_is_supported(tmp_path, capsys):
    torch.save({"encoder.0.weight": torch.zeros(2, 2)}, tmp_path / "mystery.pth")
    assert main(["models", "--inspect", str(tmp_path / "mystery.pth")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "mystery.pth: unrecognised checkpoint layout (first keys: encoder.0.weight)" in err
    assert "sr_domains reads official EDSR/RCAN" in err
    assert "spandrel adds 40+ families, e.g. ESRGAN" in err and "SwinIR" in err


def test_crafted_pickle_is_refused_in_one_line(tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"params": Payload()}))
    assert main(["models", "--inspect", str(tmp_path / "evil.pth")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "evil.pth: refused: the file holds pickled objects" in err
    assert not marker.exists()


NO_SPANDREL = """
    import sys
    sys.modules["spandrel"] = None  # as if the zoo extra were not installed
    import numpy as np
    from sr_domains import upscale_array
    from sr_domains.public_weights import load_public_checkpoint
    from sr_domains.errors import CheckpointError, MissingDependencyError
    from sr_domains.zoo import spandrel_available

    assert not spandrel_available()
    for path in sys.argv[1:3]:
        try:
            load_public_checkpoint(path)
        except CheckpointError as exc:
            print("ERR", exc)
    try:
        load_public_checkpoint(sys.argv[1], arch="spandrel")
    except MissingDependencyError as exc:
        print("DEP", exc)
    model = load_public_checkpoint(sys.argv[3])  # our own layouts need no spandrel
    print("OURS", model.arch, upscale_array(np.zeros((3, 8, 8), np.uint8), model).shape)
"""


def test_without_spandrel_messages_name_the_extra(tmp_path):
    from sr_domains import create_model

    compact, x8 = save("compact", tmp_path), save("rrdb_x8", tmp_path)
    rrdb = create_model("rrdb", scale=4, num_block=1, num_feat=8, num_grow_ch=4)
    sd = {k: v for k, v in rrdb.state_dict().items() if not k.startswith("norm_mean")}
    torch.save({"params_ema": sd}, ours := tmp_path / "ours.pth")
    res = _run(NO_SPANDREL, str(compact), str(x8), str(ours))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"ERR {compact}: unrecognised checkpoint layout")
    assert "looks like SRVGGNetCompact (Real-ESRGAN Compact): install sr-domains[zoo]" in lines[0]
    assert lines[1].startswith(f"ERR {x8}: old ESRGAN RRDBNet: unsupported number of upsampling")
    assert lines[1].endswith(
        "looks like ESRGAN (RRDBNet), which spandrel reads: install sr-domains[zoo]"
    )
    assert lines[2].startswith("DEP spandrel is required")
    assert 'pip install "sr-domains[zoo]"' in lines[2]
    assert lines[3] == "OURS rrdb (3, 32, 32)"


def test_importing_the_library_imports_neither_spandrel_nor_torchvision():
    res = _run(
        """
        import sys
        import sr_domains, sr_domains.checkpoint, sr_domains.cli, sr_domains.weights_report
        import sr_domains.zoo
        sr_domains.cli.build_parser()
        print(sorted(m for m in ("spandrel", "torchvision") if m in sys.modules))
        """
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_spandrel_imports_beside_a_torchvision_without_its_ops():
    """The installed torchvision may be a CUDA wheel beside the CPU torch: its plain import
    fails ("operator torchvision::nms does not exist"); through sr_domains spandrel imports,
    real architectures run, torchvision's ops say they are missing, torch is left as it was."""
    res = _run(
        """
        import torch
        register_fake = torch.library.register_fake
        try:
            import torchvision
            broken = False
        except RuntimeError as exc:
            broken = "torchvision::nms" in str(exc)
        from sr_domains.zoo import import_spandrel
        spandrel = import_spandrel()
        import torchvision
        from spandrel.architectures.SwinIR import SwinIR
        net = SwinIR(embed_dim=8, depths=[1], num_heads=[1], window_size=4, upscale=2,
                     upsampler="pixelshuffledirect", img_size=16)
        print(broken, len(spandrel.MAIN_REGISTRY) > 30, tuple(net(torch.rand(1, 3, 8, 8)).shape))
        assert torch.library.register_fake is register_fake
        if broken:
            assert not torchvision.extension._has_ops()
            try:
                torchvision.ops.nms(torch.rand(2, 4), torch.rand(2), 0.5)
            except RuntimeError as exc:
                print("nms:", str(exc).split(".")[0])
        """
    )
    assert res.returncode == 0, res.stderr
    first, *rest = res.stdout.splitlines()
    broken, registry, shape = first.split(" ", 2)
    assert (registry, shape) == ("True", "(1, 3, 16, 16)")
    if broken == "True":  # this project's CPU test setup: the CUDA torchvision wheel
        assert rest == ["nms: Couldn't load custom C++ ops"]


def test_models_listing_mentions_public_checkpoints(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "40+ families via spandrel (installed)" in out
    assert "models --inspect FILE" in out


def test_extra_arches_are_opt_in(tmp_path):
    """spandrel_extra_arches (restrictive licences) is never used unless asked for, and asking
    without it installed says so; with it installed, its models load with a licence note."""
    from sr_domains.errors import ConfigError
    from sr_domains.public_weights import load_public_checkpoint

    path = save("compact", tmp_path)
    try:
        import spandrel_extra_arches  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install spandrel_extra_arches"):
            load_public_checkpoint(path, extra_arches=True)
        return
    from spandrel_extra_arches.architectures.SRFormer import SRFormer  # pragma: no cover

    net = SRFormer(embed_dim=12, depths=[1], num_heads=[1], window_size=8, upscale=2)
    torch.save(net.state_dict(), srformer := tmp_path / "srformer.pth")
    with pytest.raises(CheckpointError, match="it is SRFormer from spandrel_extra_arches"):
        load_public_checkpoint(srformer)
    model = load_public_checkpoint(srformer, extra_arches=True)
    assert model.arch == "spandrel:SRFormer" and model.config.extra_arch


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("compact", "SRVGGNetCompact (Real-ESRGAN Compact)"),
        ("swinir", "SwinIR"),
        ("span", "SPAN"),
        ("omnisr", "OmniSR"),
        ("rrdb_x8", "ESRGAN (RRDBNet)"),
        ("esrgan_plus", "ESRGAN+ (RRDBNet with conv1x1)"),
        ("rcan_unshuffle", "RCAN with pixel-unshuffle"),
    ],
)
def test_family_hints_match_spandrel_key_layouts(name, hint, tmp_path):
    """What a file "looks like" when spandrel is missing, on state dicts spandrel wrote."""
    from sr_domains.zoo_notes import family_hint

    assert family_hint(torch.load(save(name, tmp_path), weights_only=True)) == hint


LISTING = """
    import contextlib, io, sys
    from sr_domains.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["models"]) == 0
    print(out.getvalue().strip().splitlines()[-1])
    print("IMPORTED", "spandrel" in sys.modules, "torchvision" in sys.modules)
"""


@pytest.mark.slow  # fresh interpreters (seconds each); CI runs it in the slow step
def test_models_listing_says_spandrel_is_installed_without_importing_it():
    # importing spandrel pulls in torchvision and torch._dynamo (~3 s): a listing only looks
    r = _run(LISTING)
    assert r.returncode == 0, r.stderr
    last, imported = r.stdout.strip().splitlines()[-2:]
    assert "via spandrel (installed)" in last
    assert imported == "IMPORTED False False"
    r = _run('import sys\nsys.modules["spandrel"] = None\n' + textwrap.dedent(LISTING))
    assert 'via spandrel (not installed: pip install "sr-domains[zoo]")' in r.stdout
