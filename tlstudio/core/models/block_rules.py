"""Per-family block rules: how the layers of each architecture are grouped into the blocks a person sees.

MobileNet ``conv_dw_N``/``conv_pw_N``, MobileNetV2 ``block_N_``, ResNet ``conv4_block2_``,
EfficientNet ``block6a_``, DenseNet, VGG/Xception, ConvNeXt, NASNet and Inception each have a rule
that maps a layer name to its block; unknown models fall back to common prefixes or to
consecutive chunks of about equal weight. Adding a family means adding one key function here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

GroupKey = Callable[[str], str | None]  # layer name -> group name, "stem", "top" or None (join previous)


def _re_key(pattern: str, fmt: Callable[[re.Match], str], extra: dict[str, str] | None = None) -> GroupKey:
    rx = re.compile(pattern)

    def key(name: str) -> str | None:
        m = rx.search(name)
        if m:
            return fmt(m)
        for prefix, group in (extra or {}).items():
            if re.match(prefix, name):
                return group
        return None

    return key


# Families whose block is one regex group and whose stem and top are name prefixes (``re.match``).
_mobilenet_key = _re_key(r"^conv_(?:dw|pw|pad)_(\d+)", lambda m: f"block_{m.group(1)}", {"conv1": "stem"})
_efficientnet_key = _re_key(
    r"^(block\d+[a-z])_", lambda m: m.group(1), {"stem_|rescaling|normalization": "stem", "top_": "top"}
)
_resnet_key = _re_key(r"^(conv\d+_block\d+)_", lambda m: m.group(1), {"conv1_|pool1_": "stem", "post_": "top"})


def _mobilenetv2_key(name: str) -> str | None:
    m = re.match(r"(block_\d+)_", name)
    if m:
        return m.group(1)
    if name.startswith("expanded_conv"):
        return "block_0"
    if name in ("Conv1", "bn_Conv1", "Conv1_relu"):
        return "stem"
    if name.startswith("Conv_1") or name == "out_relu":
        return "top"
    return None


def _mobilenetv3_key(name: str) -> str | None:
    m = re.match(r"expanded_conv_(\d+)_", name)
    if m:
        return f"block_{m.group(1)}"
    if name.startswith("expanded_conv_"):
        return "block_0"
    if name in ("rescaling", "conv", "conv_bn") or name.startswith("rescaling"):
        return "stem"
    if name.startswith("conv_1"):
        return "top"
    return None


def _densenet_key(name: str) -> str | None:
    m = re.match(r"(conv\d+_block\d+)_", name)
    if m:
        return m.group(1)
    m = re.match(r"(pool\d+)_", name)
    if m:
        return f"transition_{m.group(1)[4:]}"
    if name.startswith("conv1") or name == "pool1" or name.startswith("zero_padding2d"):
        return "stem"
    if name in ("bn", "relu"):
        return "top"
    return None


def _block_key(name: str) -> str | None:  # VGG and Xception
    m = re.match(r"(block\d+)_", name)
    return m.group(1) if m else None


def _convnext_key(name: str) -> str | None:
    m = re.search(r"_stage_(\d+)_block_\d+_", name)
    if m:
        return f"stage_{m.group(1)}"
    m = re.search(r"_downsampling_block_(\d+)", name)
    if m:
        return f"stage_{int(m.group(1)) + 1}"
    if name.endswith(("_prestem_normalization", "_stem")):
        return "stem"
    if name.startswith("layer_normalization"):
        return "top"
    return None


_NASNET_RX = re.compile(
    r"^(?:separable_conv_\d_(?:bn_|pad_)?)?(?:normal|reduction|adjust)_.*?_(stem_\d+|reduce_\d+|\d+)$"
)


def _nasnet_key(name: str) -> str | None:
    m = _NASNET_RX.match(name)
    if m:
        cell = m.group(1)
        if cell.startswith("stem_"):
            return f"cell_stem_{cell[5:]}"
        if cell.startswith("reduce_"):
            return f"cell_reduce_{cell[7:]}"
        return f"cell_{cell}"
    if name.startswith("stem_"):
        return "stem"
    return None


def _inception_key_factory() -> GroupKey:
    # Inception layers are mostly auto-named: blocks end at the "mixedN" concatenations and the
    # stem ends at the second max pooling. The key therefore depends on order; see _group().
    return lambda name: None


FAMILY_KEYS: dict[str, GroupKey] = {
    "mobilenet": _mobilenet_key,
    "mobilenetv2": _mobilenetv2_key,
    "mobilenetv3": _mobilenetv3_key,
    "efficientnet": _efficientnet_key,
    "efficientnetv2": _efficientnet_key,
    "resnet": _resnet_key,
    "densenet": _densenet_key,
    "vgg": _block_key,
    "xception": _block_key,
    "convnext": _convnext_key,
    "nasnet": _nasnet_key,
}


def detect_family(names: list[str]) -> str | None:
    """Guess the architecture family from the layer names of a model (None = unknown)."""
    s = set(names)
    if "conv_dw_1" in s:
        return "mobilenet"
    if "block_1_expand" in s or "block_16_project" in s:
        return "mobilenetv2"
    if any(n.startswith("expanded_conv_1_") for n in names):
        return "mobilenetv3"
    if "stem_conv" in s and any(re.match(r"block\d+[a-z]_", n) for n in names):
        return "efficientnet"
    if any(re.match(r"conv\d+_block\d+_concat", n) for n in names):
        return "densenet"
    if any(re.match(r"conv\d+_block\d+_", n) for n in names):
        return "resnet"
    if "block2_sepconv1" in s:
        return "xception"
    if "block1_conv1" in s and "block1_pool" in s:
        return "vgg"
    if "mixed0" in s:
        return "inception"
    if any("_stage_0_block_0_" in n for n in names):
        return "convnext"
    if "stem_conv1" in s and any(n.startswith("normal_concat") for n in names):
        return "nasnet"
    return None


def group_layers(layers: list, family: str | None) -> list[tuple[str, list]]:
    """Split ``layers`` (in model order) into named groups. Returns [(group name, layers)]."""
    names = [layer.name for layer in layers]
    if family == "inception":
        return _group_inception(layers)
    key = FAMILY_KEYS.get(family or "")
    if key is None:
        return _group_fallback(layers)
    groups: dict[str, list] = {}
    current: str | None = None
    for layer, name in zip(layers, names, strict=True):
        k = key(name)
        if k is None:
            k = current or "stem"
        groups.setdefault(k, []).append(layer)
        current = k
    ordered = list(groups.items())
    # "top" always comes last, "stem" first.
    ordered.sort(key=lambda item: 0 if item[0] == "stem" else (2 if item[0] == "top" else 1))
    return ordered


def _group_inception(layers: list) -> list[tuple[str, list]]:
    import keras

    out: list[tuple[str, list]] = []
    current: list = []
    pools = 0
    stem_done = False
    for layer in layers:
        current.append(layer)
        if not stem_done and isinstance(layer, keras.layers.MaxPooling2D):
            pools += 1
            if pools == 2:
                out.append(("stem", current))
                current, stem_done = [], True
                continue
        if re.fullmatch(r"mixed\d+", layer.name):
            out.append((layer.name, current))
            current = []
    if current:
        out.append(("top", current))
    return out


_GENERIC_PATTERNS = [
    r"^(block_?\d+[a-z]?)_",
    r"^(conv\d+_block\d+)_",
    r"^(stage_?\d+)",
    r"^(layer\d+)",
    r"^(cell_?\d+)",
]
FALLBACK_MIN_LAYERS = 16  # smaller models are shown flat


def _group_fallback(layers: list) -> list[tuple[str, list]]:
    """Prefix grouping when most weighted layers share a block-like prefix, else consecutive chunks."""
    if len(layers) < FALLBACK_MIN_LAYERS:
        return []
    names = [layer.name for layer in layers]
    for pattern in _GENERIC_PATTERNS:
        rx = re.compile(pattern)
        hits = sum(1 for n in names if rx.match(n))
        if hits >= 0.6 * len(names):
            key = _re_key(pattern, lambda m: m.group(1))
            groups: dict[str, list] = {}
            current = None
            for layer in layers:
                k = key(layer.name) or current or "stem"
                groups.setdefault(k, []).append(layer)
                current = k
            return list(groups.items())
    # Consecutive chunks with about the same number of weighted layers each.
    weighted = [i for i, layer in enumerate(layers) if count_weights(layer.weights) > 0]
    chunks = 8
    per = max(1, -(-len(weighted) // chunks))
    out: list[tuple[str, list]] = []
    start = 0
    for c in range(0, len(weighted), per):
        end = weighted[min(c + per, len(weighted)) - 1] + 1 if c + per < len(weighted) else len(layers)
        part = layers[start:end]
        if part:
            out.append((f"layers {start + 1}-{end}", part))
        start = end
    return out


def count_weights(weights) -> int:
    """Number of values in a list of weight tensors (anything with a ``shape``)."""
    total = 0
    for w in weights:
        n = 1
        for d in w.shape:
            n *= int(d)
        total += n
    return total
