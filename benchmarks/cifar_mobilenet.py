"""A MobileNetV2 with CIFAR strides, for benchmarks that need a depthwise network trained here.

torchvision's MobileNetV2 at 32×32 halves the image five times and ends on 1×1 features; trained from
scratch on the CIFAR-10 images in ``../shared/data`` it reaches only about 36 % test accuracy. This one
is torchvision's own ``MobileNetV2`` class (so edgeprune's graph, pruning and export treat it like the
torchvision family) with the stride of the second stage set to 1, as CIFAR adaptations of MobileNetV2
do: features run 16×16 → 16×16 → 8×8 → 4×4 → 4×4 → 2×2. The stem keeps its stride of 2 (the usual CIFAR
variant drops it too, at four times the MACs: too slow to train and search on two cores). About 22 M
MACs and 2.2 M parameters at width 1.0.

Benchmarks name it as a user names their own code, ``cifar_mobilenet:mobilenet_v2_cifar`` (a
``module:factory`` model; the ``benchmarks/`` folder is on ``sys.path`` when a benchmark runs).
"""

from __future__ import annotations

from torch import nn

from edgeprune.models.tv_compat import torchvision_models

# expansion t, channels c, blocks n, first stride s (torchvision's table, stage 2 at stride 1)
CIFAR_SETTING = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                 [6, 160, 3, 2], [6, 320, 1, 1]]  # fmt: skip


def mobilenet_v2_cifar(num_classes: int = 10, width_mult: float = 1.0) -> nn.Module:
    """torchvision's MobileNetV2 with CIFAR strides (see the module's docstring)."""
    tvm = torchvision_models()
    return tvm.MobileNetV2(
        num_classes=num_classes, width_mult=width_mult, inverted_residual_setting=CIFAR_SETTING
    )
