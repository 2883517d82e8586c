"""The one way edgeprune times a model: one timing loop, one ONNX Runtime session factory, one device
fingerprint.

The profiler (kernel tables), the remote agent, the runtimes' ``benchmark`` and verification all go
through here, so a table and the check of a table measure the same thing the same way.

* :func:`sample_interleaved` — warm-up, then ``repetitions`` calls per pass, calls of several models
  interleaved (A, B, A, B, …) so that slow drifts of a shared machine hit them equally; raw samples.
  :func:`benchmark_callable` / :func:`interleaved_benchmark` summarise them as :class:`LatencyStats`
  (the minimum over passes of the pass medians: drifts hit whole passes).
* :func:`ort_session` — every ONNX Runtime session: ``intra_op_num_threads`` = the target's threads,
  sequential execution, all graph optimisations, and the target's thread spinning: on (ONNX Runtime's
  own default, what a deployed application gets) unless the target's profile says ``spinning: false``.
  With spinning off, every parallel section wakes sleeping worker threads; on a 2-core VM that made the
  same network timed twice differ by 10 % RMS at 2 threads (1.2 % with spinning on), so a table and its
  check must agree on it (``benchmarks/ort_repeatability.py``). With one thread there are no workers
  and spinning changes nothing.
* :func:`device_fingerprint` — what a table was measured on: CPU vendor, family/model/stepping (or the
  Arm implementer/part), the ISA flags that change which kernels run, logical cores, this machine's
  identity, the runtime and its version, threads (and spinning, with several threads). Two machines with the same CPU name can differ by
  a third in latency, so the machine itself is part of the fingerprint.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.errors import ConfigError, ProfileError, RuntimeUnavailableError

# --- the timing loop --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one model call in ms: min over passes of the pass medians, and the spread."""

    median_ms: float  # min over passes of the per-pass median (the figure we report)
    p10_ms: float  # over all timed calls
    p90_ms: float
    min_ms: float
    count: int  # timed calls in all
    passes: int
    warmup: int
    pass_medians_ms: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pass_medians_ms"] = list(self.pass_medians_ms)
        return d


def sample_interleaved(
    calls: Sequence[Callable[[], Any]],
    *,
    warmup: int = 30,
    repetitions: int = 100,
    passes: int = 1,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> list[list[list[float]]]:
    """Timings in ms, ``[call][pass][repetition]``, of calls run side by side after ``warmup`` calls each."""
    if warmup < 0 or repetitions < 1 or passes < 1:
        raise ConfigError(
            f"timing needs warmup >= 0, repetitions >= 1, passes >= 1 (got {warmup}, {repetitions}, {passes})"
        )
    for call in calls:
        for _ in range(warmup):
            call()
    out: list[list[list[float]]] = [[] for _ in calls]
    for _ in range(passes):
        this: list[list[float]] = [[] for _ in calls]
        for _ in range(repetitions):
            for i, call in enumerate(calls):
                t0 = clock()
                call()
                this[i].append((clock() - t0) / 1e6)
        for i in range(len(calls)):
            out[i].append(this[i])
    return out


def stats_of(passes: list[list[float]], warmup: int) -> LatencyStats:
    """:class:`LatencyStats` of one call's samples, ``[pass][repetition]``."""
    medians = tuple(float(np.median(p)) for p in passes)
    a = np.concatenate([np.asarray(p, dtype=np.float64) for p in passes])
    return LatencyStats(
        median_ms=min(medians), p10_ms=float(np.percentile(a, 10)), p90_ms=float(np.percentile(a, 90)),
        min_ms=float(a.min()), count=int(a.size), passes=len(passes), warmup=warmup, pass_medians_ms=medians,
    )  # fmt: skip


def benchmark_callable(
    run: Callable[[], Any], *, warmup: int = 30, repetitions: int = 100, passes: int = 3,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> LatencyStats:  # fmt: skip
    """Time ``run()`` (one model call): warm-up, ``passes`` × ``repetitions`` calls, min of pass medians."""
    samples = sample_interleaved([run], warmup=warmup, repetitions=repetitions, passes=passes, clock=clock)
    return stats_of(samples[0], warmup)


def interleaved_benchmark(
    runs: Sequence[Callable[[], Any]], *, warmup: int = 30, repetitions: int = 100, passes: int = 3
) -> list[LatencyStats]:
    """Time several calls side by side (A, B, A, B, ...) so drifts hit them equally; for ratios."""
    samples = sample_interleaved(runs, warmup=warmup, repetitions=repetitions, passes=passes)
    return [stats_of(s, warmup) for s in samples]


def summarize_ms(samples: Sequence[float]) -> tuple[float, float, float, int]:
    """``(median, p10, p90, count)`` of a list of timings."""
    a = np.asarray(samples, dtype=np.float64)
    return float(np.median(a)), float(np.percentile(a, 10)), float(np.percentile(a, 90)), int(a.size)


def paired_difference(base_ms: Sequence[float], full_ms: Sequence[float]) -> tuple[float, float, float, int]:
    """``(median, p10, p90, count)`` of a kernel's time = full − base (paired, interleaved runs)."""
    diff = np.asarray(full_ms) - np.asarray(base_ms)
    median = float(np.median(full_ms) - np.median(base_ms))
    return median, float(np.percentile(diff, 10)), float(np.percentile(diff, 90)), len(diff)


# --- ONNX Runtime sessions ---------------------------------------------------------------------------


def import_onnxruntime() -> Any:
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - a hard dependency
        raise RuntimeUnavailableError("onnxruntime is not installed: pip install onnxruntime") from None
    return ort


# ONNX Runtime's own default: intra-op worker threads spin-wait between parallel sections
SPINNING_DEFAULT = True


def ort_session_options(threads: int, spinning: bool = SPINNING_DEFAULT) -> Any:
    """The session options of every timed or verified ONNX Runtime session (intra-op worker threads
    spin-wait between parallel sections only with ``spinning``)."""
    ort = import_onnxruntime()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.log_severity_level = 3
    return so


def ort_session(
    model: bytes | str | Path,
    threads: int,
    providers: Sequence[str] = ("CPUExecutionProvider",),
    spinning: bool = SPINNING_DEFAULT,
) -> Any:
    """A fresh ONNX Runtime session of ``model`` (bytes or a path); a model ORT rejects is a ProfileError."""
    ort = import_onnxruntime()
    src = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(
            src, sess_options=ort_session_options(threads, spinning), providers=list(providers)
        )
    except Exception as err:  # ORT raises its own exception types for malformed models
        raise ProfileError(f"ONNX Runtime rejected the model: {err}".splitlines()[0][:300]) from None


def zero_feed(sess: Any) -> dict[str, np.ndarray]:
    """Zero inputs of a session's float inputs (dynamic dimensions as 1)."""
    feed = {}
    for inp in sess.get_inputs():
        if inp.type != "tensor(float)":
            raise ProfileError(f"input {inp.name!r} has type {inp.type}; only float inputs are timed")
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        feed[inp.name] = np.zeros(shape, dtype=np.float32)
    return feed


def time_models_ms(
    models: Sequence[bytes],
    threads: int = 1,
    warmup: int = 30,
    runs: int = 100,
    spinning: bool = SPINNING_DEFAULT,
) -> list[list[float]]:
    """Per-model timings (ms) of ``runs`` interleaved calls in fresh sessions after ``warmup`` calls each."""
    if not models:
        return []
    sessions = [ort_session(m, threads, spinning=spinning) for m in models]
    calls = [functools.partial(s.run, None, zero_feed(s)) for s in sessions]
    return [s[0] for s in sample_interleaved(calls, warmup=warmup, repetitions=runs, passes=1)]


# --- device fingerprint ------------------------------------------------------------------------------

# ISA features that change which kernels a runtime picks (x86 /proc/cpuinfo "flags", Arm "Features")
ISA_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
    "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",  # x86
    "asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2", "sme",  # Arm (asimd = NEON)
)  # fmt: skip
_CPU_FIELDS = {
    "vendor_id": "vendor",
    "cpu family": "family",
    "model": "model",
    "stepping": "stepping",
    "model name": "model_name",
    "CPU implementer": "vendor",
    "CPU architecture": "family",
    "CPU part": "model",
    "CPU variant": "stepping",
}


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """This CPU: vendor, family, model, stepping, model name, ISA flags (from /proc/cpuinfo), logical CPUs."""
    info: dict[str, Any] = {"vendor": "", "family": "", "model": "", "stepping": "", "model_name": ""}
    flags: set[str] = set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not sep:
            continue
        field = _CPU_FIELDS.get(name)
        if field and not info[field]:
            info[field] = value
        elif name in ("flags", "Features") and not flags:
            flags = set(value.split())
    if not info["model_name"]:
        info["model_name"] = platform.processor() or platform.machine()
    info["isa"] = [f for f in ISA_FLAGS if f in flags]
    info["arch"] = platform.machine()
    info["logical_cpus"] = os.cpu_count() or 1
    return info


def cpu_model_name() -> str:
    """The CPU's marketing name (``AMD EPYC``), for people; matching uses the whole fingerprint."""
    return str(cpu_info()["model_name"])


@functools.lru_cache(maxsize=1)
def machine_id() -> str:
    """A short stable identity of this machine (hash of /etc/machine-id, else of the host name)."""
    for p in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            text = Path(p).read_text().strip()
        except OSError:
            continue
        if text:
            return hashlib.sha256(text.encode()).hexdigest()[:12]
    return hashlib.sha256(platform.node().encode()).hexdigest()[:12]


def threading_fields(threads: int, spinning: bool = SPINNING_DEFAULT) -> dict[str, Any]:
    """How a target runs its intra-op threads, as fingerprints and table provenance record it:
    ``{"threads": n}``, plus ``"spinning"`` with several threads (one thread has no workers to spin, so a
    1-thread fingerprint is the same either way)."""
    return {"threads": threads, **({"spinning": bool(spinning)} if threads > 1 else {})}


def cpu_fingerprint(
    runtime: str, runtime_version: str, threads: int, spinning: bool = SPINNING_DEFAULT
) -> dict[str, Any]:
    """The fingerprint of a CPU target timed on this machine (see the module docstring)."""
    c = cpu_info()
    return {
        "kind": "cpu",
        "vendor": c["vendor"],
        "family": c["family"],
        "model": c["model"],
        "stepping": c["stepping"],
        "model_name": c["model_name"],
        "arch": c["arch"],
        "isa": list(c["isa"]),
        "logical_cpus": c["logical_cpus"],
        "machine": machine_id(),
        "runtime": runtime,
        "runtime_version": runtime_version,
        **threading_fields(threads, spinning),
    }


def ort_cpu_fingerprint(threads: int, spinning: bool = SPINNING_DEFAULT) -> dict[str, Any]:
    """The fingerprint of ONNX Runtime's CPU execution provider on this machine at ``threads``."""
    return cpu_fingerprint("onnxruntime-cpu", str(import_onnxruntime().__version__), threads, spinning)


def fingerprint_id(fp: dict[str, Any]) -> str:
    """A short id of a fingerprint (same fingerprint, same id): names the table file of a device."""
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:12]


def describe_fingerprint(fp: dict[str, Any] | None) -> str:
    """One line for people: ``AMD EPYC (2 CPUs, avx512f…, machine 3d12…) onnxruntime-cpu 1.32.0, 1 thread``."""
    if not fp:
        return "an unrecorded device"
    threads = fp.get("threads")
    tail = f"{fp.get('runtime')} {fp.get('runtime_version')}, {threads} thread{'s' if threads != 1 else ''}"
    if "spinning" in fp:
        tail += f" (spinning {'on' if fp['spinning'] else 'off'})"
    if fp.get("kind") == "gpu":
        return (
            f"{fp.get('device_name')} (sm {fp.get('compute_capability')}, driver {fp.get('driver')}) {tail}"
        )
    widest = next(
        (f for f in ("amx_tile", "avx512f", "avx2", "sve2", "sve", "asimd") if f in fp.get("isa", [])), ""
    )
    return (
        f"{fp.get('model_name')} ({fp.get('logical_cpus')} CPUs{', ' + widest if widest else ''}, "
        f"machine {fp.get('machine')}) {tail}"
    )


def runtime_info(threads: int = 1, spinning: bool = SPINNING_DEFAULT) -> dict[str, Any]:
    """Provenance of a table measured with ONNX Runtime on this CPU (device line + fingerprint)."""
    fp = ort_cpu_fingerprint(threads, spinning)
    return {
        "device": f"{fp['model_name']} ({fp['logical_cpus']} logical CPUs, {platform.system()} {fp['arch']})",
        "runtime": fp["runtime"],
        "runtime_version": fp["runtime_version"],
        "python": platform.python_version(),
        **threading_fields(threads, spinning),
        "fingerprint": fp,
    }
