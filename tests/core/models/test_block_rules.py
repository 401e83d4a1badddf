"""Per-family block rules: layer names to blocks, family detection, and the generic fallback."""

from __future__ import annotations

from dataclasses import dataclass, field

from tlstudio.core.models.block_rules import FALLBACK_MIN_LAYERS, count_weights, detect_family, group_layers


@dataclass
class _W:
    shape: tuple[int, ...]


@dataclass
class _Layer:
    """Stands in for a Keras layer: the rules read only ``name`` and ``weights``."""

    name: str
    weights: list = field(default_factory=lambda: [_W((3, 3))])


def _groups(names, family):
    return [(g, [layer.name for layer in members]) for g, members in group_layers([_Layer(n) for n in names], family)]


def test_detect_family_from_names():
    assert detect_family(["conv1", "conv_dw_1", "conv_pw_1"]) == "mobilenet"
    assert detect_family(["Conv1", "block_1_expand", "block_1_project"]) == "mobilenetv2"
    assert detect_family(["conv2_block1_1_conv", "conv2_block1_out"]) == "resnet"
    assert detect_family(["conv2_block1_0_bn", "conv2_block1_concat"]) == "densenet"
    assert detect_family(["stem_conv", "block1a_dwconv"]) == "efficientnet"
    assert detect_family(["block1_conv1", "block1_pool"]) == "vgg"
    assert detect_family(["mixed0", "conv2d"]) == "inception"
    assert detect_family(["dense", "dense_1"]) is None


def test_mobilenet_layers_join_their_block_and_stem_comes_first():
    names = ["conv1", "conv1_bn", "conv_dw_1", "conv_dw_1_bn", "conv_pw_1", "conv_pad_2", "conv_dw_2", "conv_pw_2_relu"]
    assert _groups(names, "mobilenet") == [
        ("stem", ["conv1", "conv1_bn"]),
        ("block_1", ["conv_dw_1", "conv_dw_1_bn", "conv_pw_1"]),
        ("block_2", ["conv_pad_2", "conv_dw_2", "conv_pw_2_relu"]),
    ]


def test_resnet_blocks_by_stage_and_block():
    names = ["conv1_conv", "conv2_block1_1_conv", "conv2_block1_out", "conv2_block2_1_conv", "conv3_block1_out"]
    assert [g for g, _ in _groups(names, "resnet")] == ["stem", "conv2_block1", "conv2_block2", "conv3_block1"]


def test_unknown_small_models_stay_flat():
    assert group_layers([_Layer(f"dense_{i}") for i in range(FALLBACK_MIN_LAYERS - 1)], None) == []


def test_unknown_model_with_block_prefixes_groups_by_prefix():
    names = [f"stage{s}_layer{i}" for s in range(1, 5) for i in range(5)]
    assert [g for g, _ in _groups(names, None)] == ["stage1", "stage2", "stage3", "stage4"]


def test_unknown_model_without_prefixes_is_cut_into_chunks_of_every_layer():
    layers = [_Layer(f"l{i}") for i in range(40)]
    groups = group_layers(layers, None)
    assert 2 <= len(groups) <= 8
    assert [layer.name for _, members in groups for layer in members] == [layer.name for layer in layers]


def test_count_weights():
    assert count_weights([_W((3, 3, 8)), _W((8,))]) == 80
    assert count_weights([]) == 0
