"""Facts about public checkpoint families that need no spandrel import: key signatures (to say
what a file *looks like* when spandrel is missing), exact receptive radii of the purely
convolutional spandrel families, and licence notes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: Layouts sr_domains reads itself (exactly, strictly), in the words used in messages.
OWN_FAMILIES = (
    "official EDSR/RCAN",
    "BasicSR EDSR/RCAN/RRDBNet (Real-ESRGAN x4/x2)",
    "BSRGAN and old ESRGAN RRDBNet",
    "plain SRCNN/VDSR-style",
    "sr_domains .safetensors",
)

#: spandrel families commonly used for SR (its main registry has 40+; see docs).
SPANDREL_SR_FAMILIES = (
    "ESRGAN (x1/x8, ESRGAN+, unshuffle)",
    "RealESRGAN Compact (SRVGGNetCompact)",
    "SwinIR",
    "Swin2SR",
    "HAT",
    "DAT",
    "SPAN",
    "OmniSR",
    "RCAN (unshuffle)",
    "ATD",
    "DRCT",
    "PLKSR",
    "SAFMN",
    "Real-CUGAN",
)

#: (what it looks like, keys that must all be present), most specific first; hints only.
FAMILY_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("HAT", ("relative_position_index_SA", "layers.0.residual_group.overlap_attn.qkv.weight")),
    ("ATD", ("relative_position_index_SA", "layers.0.residual_group.td")),
    ("Swin2SR", ("patch_embed.proj.weight", "layers.0.residual_group.blocks.0.attn.logit_scale")),
    ("SwinIR", ("layers.0.residual_group.blocks.0.attn.relative_position_index",)),
    ("DAT", ("before_RG.1.weight", "layers.0.blocks.0.attn.attns.0.rpe_biases")),
    ("RGT", ("before_RG.1.weight", "layers.0.blocks.0.gamma")),
    ("DRCT", ("layers.0.swin1.norm1.weight", "layers.0.adjust1.weight")),
    ("SPAN", ("conv_1.sk.weight", "block_1.c1_r.sk.weight")),
    ("OmniSR", ("residual_layer.0.residual_layer.0.layer.0.fn.0.weight", "input.weight")),
    ("SAFMN", ("to_feat.weight", "feats.0.safm.aggr.weight")),
    ("PLKSR", ("feats.0.weight", "feats.1.refine.weight")),
    ("Real-CUGAN", ("unet1.conv1.conv.0.weight", "unet2.conv1.conv.0.weight")),
    ("SRVGGNetCompact (Real-ESRGAN Compact)", ("body.0.weight", "body.1.weight")),
    ("RCAN with pixel-unshuffle", ("head.1.weight", "body.0.body.0.body.3.conv_du.0.weight")),
    ("ESRGAN+ (RRDBNet with conv1x1)", ("model.1.sub.0.RDB1.conv1x1.weight",)),
    ("ESRGAN (RRDBNet)", ("model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight")),
    ("ESRGAN (RRDBNet)", ("conv_first.weight", "body.0.rdb1.conv1.weight")),
    ("ESRGAN (RRDBNet)", ("conv_first.weight", "RRDB_trunk.0.RDB1.conv1.weight")),
    ("GFPGAN (face restoration)", ("stylegan_decoder.style_mlp.1.weight",)),
    ("LaMa (inpainting)", ("model.model.1.bn_l.running_mean",)),
)


#: Words in a hint that mark a family sr_domains does not run (not image-to-image SR).
NOT_SR = ("face restoration", "inpainting")


def family_hint(state: Mapping[str, Any]) -> str | None:
    """The family whose signature keys ``state`` has (see :data:`FAMILY_HINTS`), or None."""
    keys = set(state)
    return next((name for name, need in FAMILY_HINTS if keys.issuperset(need)), None)


def _compact_radius(net: Any) -> int:
    # conv_first + num_conv convs + the last conv, all 3x3 at LR; pixel shuffle and the nearest
    # upsampled input add nothing.
    return int(net.num_conv) + 2


def _span_radius(net: Any) -> int:
    # conv_1, 6 blocks of three 3x3 convs, conv_2, 1x1 conv_cat, the 3x3 upsampler conv; the
    # "parameter-free attention" is elementwise.
    n_blocks = sum(1 for name, _ in net.named_children() if name.startswith("block_"))
    return 1 + 3 * n_blocks + 1 + 1


#: spandrel id -> exact receptive radius (LR px) of a built network; families not listed
#: (attention, global pooling, U-Nets with internal padding...) report None: blended tiling.
SPANDREL_RADIUS: dict[str, Callable[[Any], int]] = {
    "Compact": _compact_radius,
    "SPAN": _span_radius,
}

#: spandrel id -> why every output pixel depends on the whole input (read from the code).
GLOBAL_FAMILIES: dict[str, str] = {
    "OmniSR": "its grid attention mixes pixels across the whole input",
}

OWN_LICENCE = (
    "sr_domains implementation (Apache-2.0); the weights carry the licence their publisher "
    "gave them: check where you got the file"
)


def licence_note(family: str, extra: bool) -> str:
    """What is known about the licence of a spandrel family's code, and a reminder about the
    weights."""
    if extra:
        return (
            f"{family} comes from spandrel_extra_arches: a restrictive licence (e.g. "
            "non-commercial) applies to its code; check it before any commercial use, and the "
            "weights' own licence"
        )
    return (
        f"{family} is in spandrel's main registry, whose architectures are under permissive "
        "licences (MIT, Apache 2.0 or public domain); the weights carry the licence their "
        "publisher gave them: check where you got the file"
    )


__all__ = [
    "FAMILY_HINTS",
    "GLOBAL_FAMILIES",
    "NOT_SR",
    "OWN_FAMILIES",
    "OWN_LICENCE",
    "SPANDREL_RADIUS",
    "SPANDREL_SR_FAMILIES",
    "family_hint",
    "licence_note",
]
