"""Weights files are read by content, not by name, and odd files are refused in one line that
says what they are (renamed downloads, programs instead of weights, broken tensors)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sr_domains import create_model, save_checkpoint
from sr_domains.checkpoint import ModelCard, read_state_dict
from sr_domains.cli import main
from sr_domains.errors import CheckpointError, ConfigError
from sr_domains.pretrained import model_scale, resolve_model
from sr_domains.weights_files import sniff_weights

safetensors_torch = pytest.importorskip("safetensors.torch")


def _srcnn() -> torch.nn.Module:
    return create_model("srcnn", in_channels=1, scale=2)


def _plain_state(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A public-style SRCNN state dict (no normalisation buffers of ours)."""
    return {k: v for k, v in m.state_dict().items() if not k.startswith("norm_")}


def test_renamed_files_are_read_by_content(tmp_path):
    m = _srcnn()
    ours = save_checkpoint(m, tmp_path / "ours.safetensors", ModelCard(name="ours"))
    plain = tmp_path / "plain.pth"
    torch.save(_plain_state(m), plain)
    cases = {
        "ours_renamed.pth": ours,  # a download saved under the wrong name
        "OURS.SAFETENSORS": ours,
        "plain_renamed.safetensors": plain,
    }
    for name, src in cases.items():
        shutil.copy(src, tmp_path / name)
    assert sniff_weights(tmp_path / "ours_renamed.pth") == "safetensors"
    assert sniff_weights(tmp_path / "plain_renamed.safetensors") == "torch"
    x = torch.rand(1, 1, 12, 10)
    with torch.no_grad():
        ref = m.eval()(x)
        for name in cases:
            got = resolve_model(None, tmp_path / name, scale=None, n_bands=None)
            torch.testing.assert_close(got.eval()(x), ref)
    # the carded file keeps its card (name, scale) under any name
    renamed = resolve_model(None, tmp_path / "ours_renamed.pth", scale=None, n_bands=None)
    assert renamed.card.name == "ours"
    assert model_scale(None, tmp_path / "OURS.SAFETENSORS") == 2  # (was "a bare state dict")
    assert set(read_state_dict(tmp_path / "plain_renamed.safetensors")) == set(_plain_state(m))


def test_files_that_are_not_weights_say_what_they_are(tmp_path):
    m = _srcnn()
    good = tmp_path / "good.pth"
    torch.save(_plain_state(m), good)
    data = good.read_bytes()
    files = {
        "empty.pth": (b"", "the file is empty"),
        "text.pth": (b"hello weights", "not a weights file"),
        "trunc.pth": (data[: len(data) // 2], "truncated or damaged"),
    }
    for name, (content, _) in files.items():
        (tmp_path / name).write_bytes(content)
    import numpy as np

    np.savez(tmp_path / "arrays.npz", a=np.zeros(3))  # a zip, but not torch.save's
    files["arrays.npz"] = (b"", "not a weights file")
    big = tmp_path / "big.pth"
    torch.save({f"w{i}.weight": torch.rand(64, 64) for i in range(4)}, big)
    cut = big.read_bytes()
    files["big_trunc.pth"] = (cut[: len(cut) // 2], "truncated or damaged")
    st = save_checkpoint(m, tmp_path / "st.safetensors", ModelCard(name="s")).read_bytes()
    files["cut_header.safetensors"] = (st[:40], "truncated")  # an interrupted download
    for name in ("big_trunc.pth", "cut_header.safetensors"):
        (tmp_path / name).write_bytes(files[name][0])
    torch.jit.save(torch.jit.script(m), tmp_path / "prog.pt")
    files["prog.pt"] = (b"", "TorchScript program")
    (tmp_path / "adir.pth").mkdir()
    files["adir.pth"] = (b"", "is a folder")
    for name, (_, message) in files.items():
        with pytest.raises(CheckpointError, match=message):
            read_state_dict(tmp_path / name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: dict(enumerate(s.values())), "keys must be names"),
        (lambda s: {k: v.to("meta") for k, v in s.items()}, "meta device"),
        (lambda s: {k: v.to(torch.complex64) for k, v in s.items()}, r"complex64"),
        (lambda s: {k: (v * 100).to(torch.int8) for k, v in s.items()}, r"int8"),
        (lambda s: {k: v.clone().fill_(float("nan")) for k, v in s.items()}, "NaN or inf"),
    ],
    ids=["int-keys", "meta", "complex", "int8", "nan"],
)
def test_broken_tensors_are_refused_not_cast(tmp_path, change, message):
    """Such files used to end in a traceback (int keys, meta tensors), export garbage weights
    silently (int8) or with only a torch cast warning (complex)."""
    state = change(_plain_state(_srcnn()))
    path = tmp_path / "w.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=message):
        read_state_dict(path)
    if not any(isinstance(k, int) or v.is_meta for k, v in state.items()):
        st = tmp_path / "w.safetensors"
        try:
            safetensors_torch.save_file({str(k): v for k, v in state.items()}, st)
        except (KeyError, TypeError, ValueError):  # safetensors < 0.4.2 has no complex dtype
            return
        with pytest.raises(CheckpointError, match=message):
            read_state_dict(st)


def test_export_reads_public_weights_like_upscale(tmp_path, capsys):
    """export takes what upscale takes: card-less safetensors, --scale/--model for what the
    file cannot tell; and refuses a name that contradicts --format, or --opset out of range."""
    pytest.importorskip("onnx")
    m = create_model("srcnn", in_channels=1, scale=3)
    nocard = tmp_path / "nocard.safetensors"
    safetensors_torch.save_file(_plain_state(m), nocard)
    out = tmp_path / "a.pt"
    assert main(["export", "--weights", str(nocard), str(out), "--scale", "3"]) == 0
    capsys.readouterr()
    prog = torch.jit.load(str(out))
    x = torch.rand(1, 1, 8, 8)
    assert prog(x).shape == (1, 1, 24, 24)
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        pass
    else:  # --dynamo without --opset: the default is that exporter's lowest (18), not refused
        dyn = tmp_path / "dyn.onnx"
        assert main(["export", "--weights", str(nocard), str(dyn), "--dynamo", "--scale", "3"]) == 0
        assert dyn.exists()
    for argv, message in (
        (["x.onnx", "--format", "torchscript"], "name it x.pt"),
        (["x.pt", "--opset", "12"], "opset applies to ONNX"),
        (["x.onnx", "--opset", "99"], "ONNX opset must be"),
    ):
        target = str(tmp_path / argv[0])
        assert main(["export", "--weights", str(nocard), target, *argv[1:]]) == 2
        assert message in capsys.readouterr().err
        assert not Path(target).exists()


def test_minus_inf_buffers_are_data_but_inf_weights_are_not(tmp_path):
    state = _plain_state(_srcnn())
    state["attn_mask"] = torch.tensor([0.0, float("-inf")])  # an attention-mask buffer
    path = tmp_path / "mask.pth"
    torch.save(state, path)
    assert "attn_mask" in read_state_dict(path)
    state["conv1.bias"] = state["conv1.bias"].clone().fill_(float("inf"))
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="NaN or inf values: conv1.bias"):
        read_state_dict(path)


def test_inspect_reads_a_renamed_checkpoint_of_ours(tmp_path, capsys):
    ours = save_checkpoint(_srcnn(), tmp_path / "ours.safetensors", ModelCard(name="ours"))
    renamed = tmp_path / "ours.pth"
    shutil.copy(ours, renamed)
    assert main(["models", "--inspect", str(renamed), "--json"]) == 0
    assert "sr_domains checkpoint" in capsys.readouterr().out


def test_inspect_shows_what_the_card_says_the_model_was_trained_on(tmp_path, capsys):
    """``models --inspect`` left out the card's bands, so a user could not see which bands of
    their file a multi-band model expects before running it."""
    card = ModelCard(name="b", bands=["B04", "B03"], source_bands=[4, 3], modality="rgb")
    path = save_checkpoint(_srcnn(), tmp_path / "b.safetensors", card)
    assert main(["models", "--inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert "B04, B03" in text and "--bands 4,3" in text and "modality" in text
    assert main(["models", "--inspect", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bands"] == ["B04", "B03"] and report["source_bands"] == [4, 3]
    plain = save_checkpoint(_srcnn(), tmp_path / "p.safetensors", ModelCard(name="p"))
    assert main(["models", "--inspect", str(plain)]) == 0
    assert "trained on bands" not in capsys.readouterr().out


def test_a_card_that_contradicts_its_network_is_refused(tmp_path):
    """A hand-edited card (scale 4 over an x2 config) loaded without a word, then made
    ``upscale`` say "x4 was requested" when the user asked for nothing."""
    import json

    from safetensors import safe_open

    from sr_domains.checkpoint import CARD_KEY, load_checkpoint

    good = save_checkpoint(_srcnn(), tmp_path / "good.safetensors", ModelCard(name="g"))
    with safe_open(str(good), "pt") as fh:
        meta = dict(fh.metadata())
        state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    for field, value in (("scale", 4), ("in_channels", 3)):
        card = json.loads(meta[CARD_KEY])
        card[field] = value
        bad = tmp_path / f"bad_{field}.safetensors"
        safetensors_torch.save_file(state, bad, metadata={**meta, CARD_KEY: json.dumps(card)})
        with pytest.raises(CheckpointError, match=f"the card says {field} {value}"):
            load_checkpoint(bad)
    load_checkpoint(good)


def test_models_json_without_inspect_is_refused(capsys):
    assert main(["models", "--json"]) == 2
    assert "apply to --inspect" in capsys.readouterr().err


def test_export_read_card_tells_weights_from_exports(tmp_path):
    from sr_domains.export import read_card

    weights = save_checkpoint(_srcnn(), tmp_path / "w.safetensors", ModelCard(name="w"))
    shutil.copy(weights, tmp_path / "w.pt")  # a .pt name does not make it TorchScript
    for path in (weights, tmp_path / "w.pt"):
        with pytest.raises(ConfigError, match="this is a weights file, not an export"):
            read_card(path)


def test_a_model_name_that_contradicts_the_card_is_refused(tmp_path):
    """``--model rrdb`` next to a carded SRCNN file was ignored without a word."""
    ours = save_checkpoint(_srcnn(), tmp_path / "ours.safetensors", ModelCard(name="ours"))
    with pytest.raises(ConfigError, match="contradicts .* its model card says srcnn"):
        resolve_model("rrdb", ours, scale=None, n_bands=None)
    assert resolve_model("srcnn", ours, scale=None, n_bands=None).arch == "srcnn"


def _flip_tensor_bytes(path: Path, n: int = 64) -> None:
    """Flip ``n`` bytes in the middle of a safetensors file's tensor data (header intact)."""
    raw = bytearray(path.read_bytes())
    header = 8 + int.from_bytes(raw[:8], "little")
    mid = header + (len(raw) - header) // 2
    for i in range(mid, mid + n):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_damaged_tensor_data_is_refused_not_loaded(tmp_path):
    """safetensors has no checksum: flipped bytes in the tensor data loaded as another model
    (the probe: weights off by up to 903, outputs by 18). save_checkpoint writes the sha256
    of the tensors, and every read checks it."""
    from sr_domains.checkpoint import load_checkpoint
    from sr_domains.public_weights import load_public_checkpoint

    path = save_checkpoint(_srcnn(), tmp_path / "m.safetensors", ModelCard(name="m"))
    load_checkpoint(path)  # intact: loads
    _flip_tensor_bytes(path)
    for load in (load_checkpoint, load_public_checkpoint, read_state_dict):
        with pytest.raises(CheckpointError, match=r"m\.safetensors: the weights do not match"):
            load(path)


def test_shipped_weights_carry_and_pass_their_checksum(tmp_path):
    from sr_domains.checkpoint import load_checkpoint
    from sr_domains.pretrained import WEIGHTS_DIR
    from sr_domains.weights_files import DIGEST_KEY, read_safetensors

    files = sorted(Path(WEIGHTS_DIR).glob("*.safetensors"))
    assert files
    for f in files:
        assert DIGEST_KEY in read_safetensors(f, False)[0], f.name
        load_checkpoint(f)
    bad = shutil.copy(files[0], tmp_path / files[0].name)
    _flip_tensor_bytes(Path(bad), 4)
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(bad)


def test_a_checkpoint_without_a_checksum_still_loads(tmp_path):
    """Files saved before the checksum existed (or by other tools) load as before."""
    from sr_domains.checkpoint import CARD_KEY, load_checkpoint

    m = _srcnn()
    ours = save_checkpoint(m, tmp_path / "new.safetensors", ModelCard(name="x"))
    from sr_domains.weights_files import read_safetensors

    meta, state = read_safetensors(ours, True)
    old = tmp_path / "old.safetensors"
    safetensors_torch.save_file(state, old, metadata={"format": "pt", CARD_KEY: meta[CARD_KEY]})
    model, _ = load_checkpoint(old)
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_load_checkpoint_of_a_resume_file_names_the_run_weights(tmp_path):
    m = _srcnn()
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"step": 3, "model": m.state_dict(), "opt": {}}, run / "last.pt")
    from sr_domains.checkpoint import load_checkpoint

    with pytest.raises(CheckpointError, match=r"resume checkpoint.*run/weights\.safetensors"):
        load_checkpoint(run / "last.pt")
