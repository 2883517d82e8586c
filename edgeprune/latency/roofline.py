"""Per-kernel roofline estimates from a device's stated peak throughput and memory bandwidth.

``t(conv) = max(2·MACs / (peak · eff_c), bytes / (bandwidth · eff_m)) + kernel_overhead``: the slower
of compute and memory traffic, scaled by efficiencies fitted to published on-device measurements
(``benchmarks/estimate_fit.py``), plus a fixed launch/dispatch cost per convolution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from edgeprune.latency.kernels import ConvSpec


@dataclass(frozen=True)
class Roofline:
    """Device figures (stated) and fitted factors; times in milliseconds."""

    peak_gflops: float
    bandwidth_gbps: float
    compute_efficiency: float
    memory_efficiency: float
    kernel_overhead_ms: float
    bytes_per_value: int = 4

    def conv_ms(self, conv: ConvSpec) -> float:
        """Estimated time of one convolution."""
        compute_ms = 2.0 * conv.macs / (self.peak_gflops * 1e9 * self.compute_efficiency) * 1e3
        memory_ms = (
            conv.bytes_moved(self.bytes_per_value)
            / (self.bandwidth_gbps * 1e9 * self.memory_efficiency)
            * 1e3
        )
        return max(compute_ms, memory_ms) + self.kernel_overhead_ms

    def convs_ms(self, convs: Iterable[ConvSpec]) -> float:
        return sum(self.conv_ms(c) for c in convs)
