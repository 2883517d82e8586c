"""Every benchmark script imports: they import each other (``lowrank_search`` takes ``search_quality``'s
measurement code), and a renamed helper would otherwise surface only when a 30-minute run starts."""

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script", sorted(p.stem for p in BENCHMARKS.glob("*.py")))
def test_benchmark_script_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # how `python benchmarks/X.py` resolves its siblings
    module = importlib.import_module(script)
    assert script == "bench_common" or callable(getattr(module, "main", None))
    sys.modules.pop(script, None)
