"""Every benchmark script imports: they import each other (``lowrank_search`` takes ``search_quality``'s
measurement code), and a renamed helper would otherwise surface only when a 30-minute run starts."""

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
HELPERS = {"bench_common", "cifar_mobilenet"}  # imported by the scripts, not run


@pytest.mark.parametrize("script", sorted(p.stem for p in BENCHMARKS.glob("*.py")))
def test_benchmark_script_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # how `python benchmarks/X.py` resolves its siblings
    module = importlib.import_module(script)
    assert script in HELPERS or callable(getattr(module, "main", None))
    sys.modules.pop(script, None)


def test_the_cifar_mobilenet_is_a_module_factory_model_with_cifar_strides(monkeypatch):
    """``flops_vs_latency`` names it as a user names their own code; its features end on 2×2 at 32×32."""
    import torch

    from edgeprune.config import ModelConfig
    from edgeprune.models import build_model

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    model = build_model(ModelConfig(name="cifar_mobilenet:mobilenet_v2_cifar", num_classes=10)).model
    with torch.no_grad():
        features = model.features(torch.zeros(1, 3, 32, 32))
        logits = model(torch.zeros(1, 3, 32, 32))
    assert features.shape[-2:] == (2, 2)  # torchvision's own MobileNetV2 ends on 1×1 here
    assert logits.shape == (1, 10)
    sys.modules.pop("cifar_mobilenet", None)
