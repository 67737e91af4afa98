"""Checkpoints: safetensors round trips with a card, and public EDSR/RCAN/BasicSR/ESRGAN layouts.

The public-layout tests write state dicts the way the original code names its modules (written
out here from the official sources, not derived from the library's mapping), and check the
loaded model against our own model and, where cheap, against a functional re-implementation of
the original forward pass.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from _model_cases import small

from sr_domains.checkpoint import (
    ModelCard,
    load_checkpoint,
    read_card,
    save_checkpoint,
)
from sr_domains.errors import CheckpointError, OutputExistsError
from sr_domains.models import create_model, model_registry
from sr_domains.public_weights import load_public_checkpoint

DIV2K = torch.tensor([0.4488, 0.4371, 0.4040])


pytestmark = pytest.mark.usefixtures("one_thread")


def _randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-default values everywhere, including the normalisation buffers and biases."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in model.state_dict().values():
            t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return model


def _x(channels: int = 3, h: int = 6, w: int = 7) -> torch.Tensor:
    return torch.rand(1, channels, h, w, generator=torch.Generator().manual_seed(1))


# -- sr_domains checkpoints -----------------------------------------------------------------------
@pytest.mark.parametrize("arch", model_registry().names())
def test_round_trip_is_bit_exact_and_keeps_the_card(arch, tmp_path):
    model = _randomize(create_model(arch, in_channels=4, scale=3, **small(arch)))
    card = ModelCard(
        name="s2-test",
        bands=["B04", "B03", "B02", "B08"],
        modality="multispectral",
        profile={"kind": "dtype_range", "dtype": "uint16", "max": 10000},
        training_data="synthetic",
        metrics={"psnr": 31.25, "ssim": 0.9},
        notes="unit test",
    )
    path = save_checkpoint(model, tmp_path / "m.safetensors", card=card)
    loaded, got = load_checkpoint(path)
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert not loaded.training
    want = model.state_dict()
    assert list(loaded.state_dict()) == list(want)
    assert all(torch.equal(v, want[k]) for k, v in loaded.state_dict().items())
    with torch.no_grad():
        assert torch.equal(loaded(_x(4)), model(_x(4)))
    assert (got.name, got.bands, got.profile, got.metrics) == (
        card.name,
        card.bands,
        card.profile,
        card.metrics,
    )
    assert (got.arch, got.scale, got.in_channels) == (arch, 3, 4)
    assert got.config["scale"] == 3
    assert got.sr_domains_version
    assert got.created.startswith("20")
    as_dict = read_card(path)  # metadata only, as a plain dict
    assert (as_dict["arch"], as_dict["bands"], as_dict["modality"]) == (
        arch,
        ["B04", "B03", "B02", "B08"],
        "multispectral",
    )


def test_default_card_is_filled_from_the_model(tmp_path):
    model = create_model("srcnn", features=(4, 4))
    _, card = load_checkpoint(save_checkpoint(model, tmp_path / "a.safetensors"))
    assert (card.name, card.arch, card.config["features"]) == ("srcnn", "srcnn", [4, 4])


def test_local_pool_config_round_trips(tmp_path):
    model = create_model("edsr-lite-ca", n_blocks=1, in_channels=1, ca_pool=15)
    path = save_checkpoint(model, tmp_path / "lite.safetensors")
    assert path.stat().st_mode & 0o044  # readable by others (umask permitting), not 0600
    loaded, card = load_checkpoint(path)
    assert card.config["ca_pool"] == 15
    assert card.config["global_skip"] == "bicubic"
    assert loaded.config == model.config
    assert loaded.receptive_radius() == model.receptive_radius()


def test_card_that_contradicts_the_model_is_refused(tmp_path):
    model = create_model("srcnn", features=(4, 4))
    with pytest.raises(CheckpointError, match="arch='rcan'"):
        save_checkpoint(model, tmp_path / "a.safetensors", card=ModelCard(arch="rcan"))
    assert list(tmp_path.iterdir()) == []


def test_card_written_before_a_config_field_existed_still_saves(tmp_path):
    """A card from an older version lacks newer config fields (e.g. EDSR ``shared_detail``):
    it describes their defaults, so re-saving the loaded model with it works; a card that
    really contradicts the model is still refused."""
    model = create_model("edsr-lite-ca", in_channels=1)
    save_checkpoint(model, tmp_path / "a.safetensors")
    loaded, card = load_checkpoint(tmp_path / "a.safetensors")
    old = {k: v for k, v in card.config.items() if k != "shared_detail"}
    old_card = dataclasses.replace(card, config=old)
    save_checkpoint(loaded, tmp_path / "b.safetensors", card=old_card)
    assert read_card(tmp_path / "b.safetensors")["config"]["shared_detail"] is False
    shared = create_model("edsr-lite-ca", in_channels=1, shared_detail=True)
    with pytest.raises(CheckpointError, match="does not match"):
        save_checkpoint(shared, tmp_path / "c.safetensors", card=old_card)


def test_no_overwrite_unless_asked(tmp_path):
    path = tmp_path / "m.safetensors"
    first = create_model("edsr", n_blocks=1, n_feats=4)
    save_checkpoint(first, path)
    second = _randomize(create_model("edsr", n_blocks=1, n_feats=4), seed=5)
    with pytest.raises(OutputExistsError) as info:
        save_checkpoint(second, path)
    assert isinstance(info.value, FileExistsError)
    assert str(path) in str(info.value)
    loaded, _ = load_checkpoint(path)
    assert torch.equal(loaded.conv_first.weight, first.conv_first.weight)
    save_checkpoint(second, path, overwrite=True)
    loaded, _ = load_checkpoint(path)
    assert torch.equal(loaded.conv_first.weight, second.conv_first.weight)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp files left


def test_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    import os

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)  # fails after the temp file was written
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(create_model("srcnn", features=(4, 4)), tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_or_foreign_files_raise_checkpoint_error_naming_the_file(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all, sorry")
    with pytest.raises(CheckpointError, match=r"bad\.safetensors"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match=r"missing\.safetensors: checkpoint file not found"):
        load_checkpoint(tmp_path / "missing.safetensors")

    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match=r"plain\.safetensors.*load_public_checkpoint"):
        load_checkpoint(plain)
    with pytest.raises(CheckpointError, match=r"plain\.safetensors: no sr_domains model card"):
        read_card(plain)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"definitely not a pickle")
    with pytest.raises(CheckpointError, match=r"garbage\.pth"):
        load_public_checkpoint(garbage)


def test_weights_that_do_not_fit_the_card_list_the_keys(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    model = create_model("edsr", n_blocks=2, n_feats=4)
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    with safe_open(str(path), "pt") as fh:  # keep the card, drop one tensor, add another
        meta = fh.metadata()
    del meta["sr_domains.tensors_sha256"]  # (re-written by another tool: no checksum of ours)
    state = {k: v for k, v in model.state_dict().items() if k != "body.1.conv2.bias"}
    state["extra.weight"] = torch.zeros(1)
    save_file(state, path, metadata=meta)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "body.1.conv2.bias" in msg
    assert "extra.weight" in msg


# -- public layouts: writers that follow the original code's module names ------------------------
def _mean_shift(rgb_range: float, sign: float) -> dict[str, torch.Tensor]:
    return {"weight": torch.eye(3).view(3, 3, 1, 1), "bias": sign * rgb_range * DIV2K}


def _official_tail(sd: dict, out: dict) -> None:
    for k, v in sd.items():
        if k.startswith("upsample."):
            out["tail.0." + k[len("upsample.") :]] = v  # common.Upsampler is tail.0
        elif k.startswith("conv_last."):
            out["tail.1." + k[len("conv_last.") :]] = v
        elif k.startswith("conv_first."):
            out["head.0." + k[len("conv_first.") :]] = v


def _with_mean_shifts(out: dict) -> dict:
    for name, sign in (("sub_mean", -1.0), ("add_mean", 1.0)):
        for p, t in _mean_shift(255.0, sign).items():
            out[f"{name}.{p}"] = t
    return out


def official_edsr(model) -> dict[str, torch.Tensor]:
    """EDSR-PyTorch: sub_mean, head.0, body.{i}.body.{0,2}, body.{n}, tail.0.*, tail.1, add_mean."""
    sd, n, out = model.state_dict(), model.config.n_blocks, {}
    _official_tail(sd, out)
    for i in range(n):
        for ours, theirs in (("conv1", 0), ("conv2", 2)):
            for p in ("weight", "bias"):
                out[f"body.{i}.body.{theirs}.{p}"] = sd[f"body.{i}.{ours}.{p}"]
    for p in ("weight", "bias"):
        out[f"body.{n}.{p}"] = sd[f"conv_after_body.{p}"]
    return _with_mean_shifts(out)


def official_rcan(model) -> dict[str, torch.Tensor]:
    """yulunzhang/RCAN: body.{g}.body.{b}.body.{0,2,3.conv_du.{0,2}}, body.{g}.body.{nb}, ..."""
    sd, c, out = model.state_dict(), model.config, {}
    _official_tail(sd, out)
    for g in range(c.n_resgroups):
        for b in range(c.n_resblocks):
            ours, theirs = f"body.{g}.blocks.{b}.", f"body.{g}.body.{b}.body."
            for p in ("weight", "bias"):
                out[f"{theirs}0.{p}"] = sd[f"{ours}conv1.{p}"]
                out[f"{theirs}2.{p}"] = sd[f"{ours}conv2.{p}"]
                out[f"{theirs}3.conv_du.0.{p}"] = sd[f"{ours}ca.down.{p}"]
                out[f"{theirs}3.conv_du.2.{p}"] = sd[f"{ours}ca.up.{p}"]
        for p in ("weight", "bias"):
            out[f"body.{g}.body.{c.n_resblocks}.{p}"] = sd[f"body.{g}.conv.{p}"]
    for p in ("weight", "bias"):
        out[f"body.{c.n_resgroups}.{p}"] = sd[f"conv_after_body.{p}"]
    return _with_mean_shifts(out)


def basicsr_rcan(model) -> dict[str, torch.Tensor]:
    """BasicSR rcan_arch: body.{g}.residual_group.{b}.rcab.{0,2,3.attention.{1,3}}, .conv."""
    out = {}
    for k, v in model.state_dict().items():
        if k.startswith("norm_mean"):
            continue
        k = k.replace(".blocks.", ".residual_group.").replace(".conv1.", ".rcab.0.")
        k = k.replace(".conv2.", ".rcab.2.").replace(".ca.down.", ".rcab.3.attention.1.")
        out[k.replace(".ca.up.", ".rcab.3.attention.3.")] = v
    return out


def basicsr_plain(model) -> dict[str, torch.Tensor]:
    """BasicSR EDSR / RRDBNet use the same names as sr_domains (no mean buffers)."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith("norm_mean")}


def old_esrgan(model) -> dict[str, torch.Tensor]:
    """Original ESRGAN: model.0, model.1.sub.{i}.RDB{r}.conv{c}.0, model.1.sub.{n}, model.3/6..."""
    n_up = 2 if model.config.scale == 4 else 1
    names = {"conv_first": "model.0", "conv_body": f"model.1.sub.{model.config.num_block}"}
    names |= {"conv_up1": "model.3", "conv_up2": "model.6"}
    names |= {"conv_hr": f"model.{3 * n_up + 2}", "conv_last": f"model.{3 * n_up + 4}"}
    out = {}
    for k, v in basicsr_plain(model).items():
        head, _, param = k.rpartition(".")
        if head.startswith("body."):
            _, i, rdb, conv = head.split(".")
            out[f"model.1.sub.{i}.RDB{rdb[-1]}.{conv}.0.{param}"] = v
        else:
            out[f"{names[head]}.{param}"] = v
    return out


# -- functional references of the original forward passes ----------------------------------------
def _conv(sd: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    w = sd[f"{name}.weight"]
    return F.conv2d(x, w, sd[f"{name}.bias"], padding=w.shape[-1] // 2)


def _tail(sd: dict, prefix: str, x: torch.Tensor, n_feats: int) -> torch.Tensor:
    i = 0
    while f"{prefix}.{i}.weight" in sd:
        r = math.isqrt(sd[f"{prefix}.{i}.weight"].shape[0] // n_feats)
        x = F.pixel_shuffle(_conv(sd, f"{prefix}.{i}", x), r)
        i += 2
    return x


def reference_official_edsr(sd: dict, x255: torch.Tensor, n: int) -> torch.Tensor:
    x = _conv(sd, "head.0", _conv(sd, "sub_mean", x255))
    res = x
    for i in range(n):
        res = res + _conv(sd, f"body.{i}.body.2", F.relu(_conv(sd, f"body.{i}.body.0", res)))
    res = _conv(sd, f"body.{n}", res) + x
    out = _conv(sd, "tail.1", _tail(sd, "tail.0", res, x.shape[1]))
    return _conv(sd, "add_mean", out)


def reference_official_rcan(sd: dict, x255: torch.Tensor, groups: int, blocks: int):
    x = _conv(sd, "head.0", _conv(sd, "sub_mean", x255))
    res = x
    for g in range(groups):
        gres = res
        for b in range(blocks):
            p = f"body.{g}.body.{b}.body."
            r = _conv(sd, p + "2", F.relu(_conv(sd, p + "0", gres)))
            y = r.mean(dim=(2, 3), keepdim=True)
            y = torch.sigmoid(_conv(sd, p + "3.conv_du.2", F.relu(_conv(sd, p + "3.conv_du.0", y))))
            gres = gres + r * y
        res = _conv(sd, f"body.{g}.body.{blocks}", gres) + res
    res = _conv(sd, f"body.{groups}", res) + x
    out = _conv(sd, "tail.1", _tail(sd, "tail.0", res, x.shape[1]))
    return _conv(sd, "add_mean", out)


def reference_basicsr_rrdb(sd: dict, x: torch.Tensor, scale: int) -> torch.Tensor:
    def lrelu(t):
        return F.leaky_relu(t, 0.2)

    if scale == 2:  # BasicSR's pixel_unshuffle: view + permute, channel order (c, dy, dx)
        b, c, hh, ww = x.shape
        x = x.view(b, c, hh // 2, 2, ww // 2, 2).permute(0, 1, 3, 5, 2, 4)
        x = x.reshape(b, c * 4, hh // 2, ww // 2)
    feat = _conv(sd, "conv_first", x)
    body, i = feat, 0
    while f"body.{i}.rdb1.conv1.weight" in sd:
        out = body
        for r in (1, 2, 3):
            p, feats = f"body.{i}.rdb{r}.", [out]
            for c in range(1, 5):
                feats.append(lrelu(_conv(sd, f"{p}conv{c}", torch.cat(feats, 1))))
            out = _conv(sd, f"{p}conv5", torch.cat(feats, 1)) * 0.2 + out
        body, i = out * 0.2 + body, i + 1
    feat = feat + _conv(sd, "conv_body", body)
    for up in ("conv_up1", "conv_up2"):
        feat = lrelu(_conv(sd, up, F.interpolate(feat, scale_factor=2, mode="nearest")))
    return _conv(sd, "conv_last", lrelu(_conv(sd, "conv_hr", feat)))


# -- public layout tests -------------------------------------------------------------------------
def _mean_model(name: str, **kw) -> torch.nn.Module:
    """Our model set up like the official weights: pixel_range 255 and the DIV2K mean."""
    model = _randomize(create_model(name, pixel_range=255.0, **kw))
    with torch.no_grad():
        model.norm_mean_in.copy_(DIV2K)
        model.norm_mean_out.copy_(DIV2K)
    return model


def _save(sd: dict, path: Path) -> Path:
    torch.save(sd, path)
    return path


def _assert_same_outputs(loaded, ours, x):
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), ours(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scale", [2, 4])
def test_official_edsr_layout(scale, tmp_path):
    ours = _mean_model("edsr", scale=scale, n_blocks=2, n_feats=8)
    sd = official_edsr(ours)
    loaded = load_public_checkpoint(_save(sd, tmp_path / "edsr.pt"), arch="edsr-baseline")
    assert loaded.arch == "edsr"
    cfg = loaded.config
    assert (cfg.n_blocks, cfg.n_feats, cfg.scale, cfg.pixel_range) == (2, 8, scale, 255.0)
    _assert_same_outputs(loaded, ours, _x())
    ref = reference_official_edsr({k: v.double() for k, v in sd.items()}, _x().double() * 255, 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded.double()(_x().double()), ref / 255)


@pytest.mark.parametrize("scale", [2, 4])
def test_official_rcan_layout(scale, tmp_path):
    ours = _mean_model("rcan", scale=scale, n_resgroups=2, n_resblocks=2, n_feats=8, reduction=4)
    sd = official_rcan(ours)
    loaded = load_public_checkpoint(_save(sd, tmp_path / "rcan.pt"), arch="rcan", scale=scale)
    cfg = loaded.config
    assert (cfg.n_resgroups, cfg.n_resblocks, cfg.n_feats, cfg.reduction) == (2, 2, 8, 4)
    _assert_same_outputs(loaded, ours, _x())
    ref = reference_official_rcan({k: v.double() for k, v in sd.items()}, _x().double() * 255, 2, 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded.double()(_x().double()), ref / 255)


@pytest.mark.parametrize(("scale", "unshuffle"), [(4, False), (2, True)])
def test_basicsr_rrdbnet_prefers_params_ema(scale, unshuffle, tmp_path):
    kw = {"num_block": 2, "num_feat": 8, "num_grow_ch": 4}
    ema = _randomize(create_model("rrdb", scale=scale, pixel_unshuffle=unshuffle, **kw), seed=1)
    with torch.no_grad():  # BasicSR has no mean buffers
        ema.norm_mean_in.zero_()
        ema.norm_mean_out.zero_()
    other = _randomize(create_model("rrdb", scale=scale, pixel_unshuffle=unshuffle, **kw), seed=2)
    sd = basicsr_plain(ema)
    path = _save({"params": basicsr_plain(other), "params_ema": sd}, tmp_path / "net_g.pth")
    loaded = load_public_checkpoint(path)
    cfg = loaded.config
    assert (cfg.scale, cfg.pixel_unshuffle, cfg.in_channels, cfg.num_block) == (
        scale,
        unshuffle,
        3,
        2,
    )
    assert loaded.size_multiple == (2 if unshuffle else 1)
    _assert_same_outputs(loaded, ema, _x(h=6, w=8))
    ref = reference_basicsr_rrdb(
        {k: v.double() for k, v in sd.items()}, _x(h=6, w=8).double(), scale
    )
    with torch.no_grad():
        torch.testing.assert_close(loaded.double()(_x(h=6, w=8).double()), ref)


@pytest.mark.parametrize("scale", [2, 4])
def test_old_esrgan_layout(scale, tmp_path):
    ours = _randomize(create_model("rrdb", scale=scale, num_block=2, num_feat=8, num_grow_ch=4))
    with torch.no_grad():
        ours.norm_mean_in.zero_()
        ours.norm_mean_out.zero_()
    loaded = load_public_checkpoint(_save(old_esrgan(ours), tmp_path / "esrgan.pth"))
    assert (loaded.config.scale, loaded.config.num_block) == (scale, 2)
    _assert_same_outputs(loaded, ours, _x())


def test_basicsr_edsr_and_rcan_layouts(tmp_path):
    edsr = _mean_model("edsr", scale=3, n_blocks=2, n_feats=8)
    loaded = load_public_checkpoint(_save(basicsr_plain(edsr), tmp_path / "edsr.pth"))
    assert (loaded.arch, loaded.config.scale, loaded.config.pixel_range) == ("edsr", 3, 255.0)
    _assert_same_outputs(loaded, edsr, _x())
    rcan = _mean_model("rcan", scale=2, n_resgroups=2, n_resblocks=3, n_feats=8, reduction=2)
    path = _save({"params": basicsr_rcan(rcan)}, tmp_path / "rcan.pth")
    loaded = load_public_checkpoint(path)
    assert (loaded.config.n_resblocks, loaded.config.reduction) == (3, 2)
    _assert_same_outputs(loaded, rcan, _x())


def test_public_weights_survive_a_sr_domains_round_trip(tmp_path):
    ours = _mean_model("edsr", scale=2, n_blocks=1, n_feats=4)
    public = load_public_checkpoint(_save(official_edsr(ours), tmp_path / "edsr.pt"))
    loaded, card = load_checkpoint(save_checkpoint(public, tmp_path / "edsr.safetensors"))
    assert card.config["pixel_range"] == 255.0
    with torch.no_grad():
        assert torch.equal(loaded(_x()), public(_x()))


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    sd = official_edsr(_mean_model("edsr", scale=2, n_blocks=3, n_feats=8))
    del sd["body.1.body.2.weight"]
    sd["body.1.body.9.weight"] = torch.zeros(1)
    sd["some_extra.bias"] = torch.zeros(1)
    path = _save(sd, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError) as info:
        load_public_checkpoint(path)
    msg = str(info.value)
    assert "broken.pt" in msg
    assert "1 missing keys: body.1.body.2.weight" in msg
    assert "2 unexpected keys: body.1.body.9.weight, some_extra.bias" in msg


def test_shape_mismatch_and_long_key_lists(tmp_path):
    sd = official_edsr(_mean_model("edsr", scale=2, n_blocks=12, n_feats=8))
    sd["body.0.body.2.weight"] = torch.zeros(8, 8, 5, 5)
    for i in range(1, 12):
        del sd[f"body.{i}.body.0.bias"]
    with pytest.raises(CheckpointError) as info:
        load_public_checkpoint(_save(sd, tmp_path / "long.pt"))
    msg = str(info.value)
    assert "11 missing keys" in msg
    assert "(+3 more)" in msg  # truncated list
    assert "body.0.body.2.weight (8, 8, 5, 5) vs (8, 8, 3, 3)" in msg


def test_wrong_arch_scale_or_layout_is_refused(tmp_path):
    path = _save(
        official_edsr(_mean_model("edsr", scale=2, n_blocks=1, n_feats=4)), tmp_path / "e.pt"
    )
    with pytest.raises(CheckpointError, match="asked for arch 'rrdb'"):
        load_public_checkpoint(path, arch="rrdb")
    with pytest.raises(CheckpointError, match="scale=4 given, but the file has 2"):
        load_public_checkpoint(path, scale=4)
    with pytest.raises(CheckpointError, match="unknown option"):
        load_public_checkpoint(path, n_blockz=2)
    native = _save(create_model("edsr", n_blocks=1, n_feats=4).state_dict(), tmp_path / "n.pt")
    with pytest.raises(CheckpointError, match="bare sr_domains state dict"):
        load_public_checkpoint(native)
    other = _save({"foo.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"other\.pt: unrecognised checkpoint layout"):
        load_public_checkpoint(other)


# -- plain SRCNN / VDSR-style state dicts, wrappers, safetensors without a card -------------------
def _plain(model) -> dict[str, torch.Tensor]:
    """What a plain training script saves: our key names, no normalisation buffers."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith("norm_mean")}


def test_plain_srcnn_state_dict_loads_with_defaults_reported(tmp_path, caplog):
    ours = _randomize(create_model("srcnn", in_channels=1, scale=3, kernels=(9, 1, 5)))
    with torch.no_grad():
        ours.norm_mean_in.zero_()
        ours.norm_mean_out.zero_()
    path = _save(_plain(ours), tmp_path / "srcnn.pth")
    with caplog.at_level("WARNING", logger="sr_domains"):
        loaded = load_public_checkpoint(path, scale=3)
    assert "zero means assumed" in caplog.text
    cfg = loaded.config
    assert (cfg.features, cfg.kernels, cfg.scale, cfg.residual) == ((64, 32), (9, 1, 5), 3, False)
    _assert_same_outputs(loaded, ours, _x(1))
    assert load_public_checkpoint(path).scale == 2  # not in the file: x2 unless told
    assert load_public_checkpoint(path, default_scale=4).scale == 4
    assert loaded.card.name == "srcnn"
    assert loaded.card.notes.startswith("plain SRCNN weights read by sr_domains")


def test_vdsr_style_residual_srcnn_by_preset(tmp_path):
    ours = _randomize(create_model("srcnn-residual", in_channels=1, scale=2))
    with torch.no_grad():
        ours.norm_mean_in.zero_()
        ours.norm_mean_out.zero_()
    path = _save(_plain(ours), tmp_path / "vdsr_like.pth")
    loaded = load_public_checkpoint(path, arch="srcnn-residual")
    assert loaded.config.residual is True
    _assert_same_outputs(loaded, ours, _x(1))
    with pytest.raises(CheckpointError, match="asked for arch 'edsr-full'"):
        load_public_checkpoint(path, arch="edsr-full")


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"model": sd, "epoch": torch.tensor(3)},
        lambda sd: {"net": sd},
        lambda sd: {"generator": sd},  # a single wrapper key of any name
        lambda sd: {f"netG.{k}": v for k, v in sd.items()},
        lambda sd: {"params-ema": {f"module.{k}": v for k, v in sd.items()}},
    ],
)
def test_training_script_wrappers_are_unwrapped(wrap, tmp_path):
    ours = _randomize(create_model("srcnn", in_channels=1))
    with torch.no_grad():
        ours.norm_mean_in.zero_()
        ours.norm_mean_out.zero_()
    loaded = load_public_checkpoint(_save(wrap(_plain(ours)), tmp_path / "w.pth"))
    _assert_same_outputs(loaded, ours, _x(1))


def test_public_safetensors_without_a_card_and_resolve_model(tmp_path):
    from safetensors.torch import save_file

    from sr_domains.pretrained import resolve_model

    ours = _randomize(create_model("rrdb", scale=4, num_block=1, num_feat=8, num_grow_ch=4))
    with torch.no_grad():
        ours.norm_mean_in.zero_()
        ours.norm_mean_out.zero_()
    path = tmp_path / "RealESRGAN_tiny.safetensors"
    save_file(basicsr_plain(ours), str(path))
    model = resolve_model(None, path, scale=4, n_bands=3)
    assert (model.arch, model.card.name) == ("rrdb", "RealESRGAN_tiny")
    _assert_same_outputs(model, ours, _x())
    srcnn = _save(_plain(create_model("srcnn", in_channels=1)), tmp_path / "srcnn.pth")
    assert resolve_model(None, srcnn, scale=3, n_bands=1).scale == 3  # default_scale


def test_assumed_settings_are_warned_once_and_a_given_scale_is_not_assumed(tmp_path, caplog):
    """`upscale --weights srcnn.pth` read the file twice and warned twice; with `--scale 3` the
    warning said "assumed: scale=3" though the user gave it."""
    import logging

    pytest.importorskip("rasterio")
    from sr_domains.cli import main
    from sr_domains.testing.geo import make_geotiff

    srcnn = create_model("srcnn", in_channels=1)
    sd = {k: v for k, v in srcnn.state_dict().items() if not k.startswith("norm_mean")}
    torch.save(sd, tmp_path / "srcnn.pth")
    src = make_geotiff(tmp_path / "g.tif", width=24, height=20)
    base = ["upscale", str(src), "--weights", str(tmp_path / "srcnn.pth"), "--device", "cpu"]
    with caplog.at_level(logging.WARNING, logger="sr_domains.public_weights"):
        assert main([*base[:2], str(tmp_path / "o2.tif"), *base[2:]]) == 0
    assumed = [r.getMessage() for r in caplog.records if "assumed:" in r.getMessage()]
    assert len(assumed) == 1 and "scale=2, residual=False" in assumed[0], assumed
    (tmp_path / "srcnn.pth").rename(tmp_path / "srcnn3.pth")  # (a file not read before)
    caplog.clear()
    base[3] = str(tmp_path / "srcnn3.pth")
    with caplog.at_level(logging.WARNING, logger="sr_domains.public_weights"):
        assert main([*base[:2], str(tmp_path / "o3.tif"), *base[2:], "--scale", "3"]) == 0
    assumed = [r.getMessage() for r in caplog.records if "assumed:" in r.getMessage()]
    assert len(assumed) == 1 and "scale" not in assumed[0] and "residual=False" in assumed[0]


def test_a_reloaded_or_resaved_model_keeps_its_card_and_so_its_values(tmp_path):
    """load_checkpoint gave the card only beside the model, and save_checkpoint without card=
    wrote an empty one: a shipped model saved and reloaded lost its intensity profile, and
    upscale_array ran float input through `identity` instead (off by hundreds)."""
    import numpy as np

    from sr_domains import load_pretrained, upscale_array

    shipped = load_pretrained("sr-lite-gray-x2")
    path = save_checkpoint(shipped, tmp_path / "nested" / "copy.safetensors")  # folder made
    model, card = load_checkpoint(path)
    assert model.card == card and card.profile == shipped.card.profile and card.profile
    assert card.name == shipped.card.name
    x = np.random.default_rng(0).uniform(0, 1000, (24, 24)).astype(np.float32)
    np.testing.assert_array_equal(upscale_array(x, model), upscale_array(x, shipped))
    own = create_model("srcnn", features=(4, 4))  # no card of its own: one is made
    assert load_checkpoint(save_checkpoint(own, tmp_path / "o.safetensors"))[1].arch == "srcnn"


def test_a_truncated_safetensors_file_is_called_truncated(tmp_path):
    """A half-copied .safetensors said "not a readable safetensors file (Error while
    deserializing header: incomplete metadata, ...)"; the docs promise "truncated"."""
    from sr_domains.pretrained import list_pretrained

    whole = next(e.path for e in list_pretrained() if e.name == "sr-lite-gray-x2").read_bytes()
    half = tmp_path / "half.safetensors"
    half.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(
        CheckpointError,
        match=rf"half\.safetensors: truncated \({len(whole) // 2} of {len(whole)} bytes",
    ):
        load_checkpoint(half)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(junk)


def test_a_fine_tuned_copy_is_not_saved_under_the_shipped_name_and_scores(tmp_path):
    """save_checkpoint without card= copied a loaded model's card whole: perturbed weights
    were saved as "sr-lite-gray-x2" with its held-out scores."""
    from sr_domains import load_pretrained

    model = load_pretrained("sr-lite-gray-x2")
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    _, card = load_checkpoint(save_checkpoint(model, tmp_path / "tuned.safetensors"))
    shipped = load_pretrained("sr-lite-gray-x2").card
    assert card.name != shipped.name and card.metrics == {}
    assert card.profile == shipped.profile and card.bands == shipped.bands  # what it needs
    assert "derived from sr-lite-gray-x2" in card.notes
