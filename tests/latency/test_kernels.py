from __future__ import annotations

import pytest

from edgeprune.latency.kernels import ConvSpec, KernelKey, extract_kernels
from edgeprune.models.cifar_resnet import cifar_resnet
from edgeprune.models.tv_compat import torchvision_models


def test_resnet20_kernels_in_execution_order():
    keys = extract_kernels(cifar_resnet(20), (3, 32, 32))
    assert len(keys) == 1 + 9 + 1
    assert str(keys[0]) == "conv/h32w32/c3-0-16/k3s1g1/input/fp32"
    assert str(keys[1]) == "cifar_block/h32w32/c16-16-16/k3s1g1/-/fp32"
    assert str(keys[4]) == "cifar_block/h32w32/c16-32-32/k3s2g1/-/fp32"  # first block of stage 2
    assert str(keys[7]) == "cifar_block/h16w16/c32-64-64/k3s2g1/-/fp32"
    assert str(keys[-1]) == "gap_linear/h8w8/c64-0-10/k1s1g1/-/fp32"


def test_pruned_network_keys_follow_its_shape(make_pruned_resnet):
    model = make_pruned_resnet((1, 2, 1), [[8], [16, 24], [40]])
    keys = extract_kernels(model, (3, 32, 32))
    blocks = [k for k in keys if k.op == "cifar_block"]
    assert [(k.cin, k.mid, k.cout, k.stride, k.h) for k in blocks] == [
        (16, 8, 16, 1, 32),
        (16, 16, 32, 2, 32),
        (32, 24, 32, 1, 16),
        (32, 40, 64, 2, 16),
    ]


def test_mobilenet_v2_depthwise_blocks():
    mv2 = torchvision_models().mobilenet_v2(num_classes=10)
    keys = extract_kernels(mv2, (3, 32, 32))
    assert keys[0].variant == "input" and keys[0].stride == 2
    assert keys[1].op == "inverted_residual" and keys[1].variant == "noexpand" and keys[1].mid == 32
    assert str(keys[2]) == "inverted_residual/h16w16/c16-96-24/k3s2g1/-/fp32"
    assert keys[-1].op == "linear" and keys[-1].cin == 1280


def test_key_round_trip_and_malformed():
    k = KernelKey("cifar_block", 16, 16, 32, 24, 64, 3, 2, 1, "", "fp16")
    assert KernelKey.parse(str(k)) == k
    with pytest.raises(ValueError, match="malformed"):
        KernelKey.parse("cifar_block/h16/c1")
    with pytest.raises(ValueError, match="unknown kernel op"):
        KernelKey.parse("warp/h1w1/c1-0-1/k1s1g1/-/fp32")


def test_macs_of_a_block():
    k = KernelKey("cifar_block", 32, 32, 16, 8, 32, 3, 2, 1)
    # conv1 16->8 s2 at 16x16 out, conv2 8->32 at 16x16, shortcut 16->32 1x1 s2
    assert k.macs == 16 * 16 * 8 * 16 * 9 + 16 * 16 * 32 * 8 * 9 + 16 * 16 * 32 * 16
    assert ConvSpec(4, 4, 8, 8, 3, 1, 8).macs == 16 * 8 * 9


def test_squeeze_excitation_and_hard_swish_are_kernels_of_their_own():
    # MobileNetV3's SE branches and hard-swish activations took half of each network's time while
    # they were not kernels (the per-network fit had to guess them)
    from edgeprune.config import ModelConfig
    from edgeprune.latency.kernel_models import kernel_models
    from edgeprune.models import build_model

    model = build_model(ModelConfig(name="torchvision:mobilenet_v3_small", num_classes=10)).model
    keys = extract_kernels(model, (3, 40, 40))
    se = [k for k in keys if k.op == "se"]
    assert len(se) == 9 and all(k.cin == k.cout and 0 < k.mid < k.cin for k in se)
    assert se[0].macs == 2 * se[0].cin * se[0].mid  # the two 1x1 convs on the pooled vector
    assert any(k.variant.endswith("hswish") for k in keys) and keys[0].variant == "input-hswish"
    assert all(KernelKey.parse(str(k)) == k for k in keys)
    base, full = kernel_models(se[0])
    assert len(full) > len(base)
