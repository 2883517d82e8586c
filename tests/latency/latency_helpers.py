"""Helpers shared by the latency tests (a module, so test files can import them)."""

PROV = {
    "source": "measured",
    "device": "cpu",
    "runtime": "onnxruntime-cpu",
    "runtime_version": "1",
    "threads": 1,
    "date": "2026-01-01T00:00:00Z",
    "method": "test",
}
