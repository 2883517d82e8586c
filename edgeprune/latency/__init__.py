"""Latency stage: hardware profiles, per-kernel latency tables, the predictor, profilers, remote agent.

Light at import time: the profilers (ONNX Runtime, TensorRT) and the agent load only when used.
"""

from __future__ import annotations

from edgeprune.latency.kernels import ConvSpec, KernelKey, extract_kernels
from edgeprune.latency.predictor import LatencyPredictor, predictor_for
from edgeprune.latency.profile import HardwareProfile, list_profiles, load_profile
from edgeprune.latency.table import Entry, LatencyTable

__all__ = [
    "ConvSpec",
    "Entry",
    "HardwareProfile",
    "KernelKey",
    "LatencyPredictor",
    "LatencyTable",
    "extract_kernels",
    "list_profiles",
    "load_profile",
    "predictor_for",
]
