"""Profile a target: measure every kernel of a search space into the target's table, resumably.

Passes are spread in time: pass 1 measures every kernel once (in a shuffled order), pass 2 again,
and so on; each entry keeps the minimum of its pass medians. The table is rewritten atomically after
every few kernels, so an interrupted run loses at most those, and a restart skips every kernel that
already has the requested number of passes. Whole networks (the unpruned one and the calibration
networks the per-network overhead is fitted on) are timed again after the passes until their two
fastest passes agree (:func:`settle_networks`). Timing goes through a :class:`KernelTimer`: local ONNX
Runtime or a remote agent (:mod:`edgeprune.latency.agent_client`).

INT8 kernels (keys of precision ``int8`` on ONNX Runtime) are timed as they are shipped: each
single-kernel model is quantized with the target's calibration recipe
(:class:`edgeprune.latency.quantize.ProfileQuantizer`) before it is timed, and the table records the
recipe under ``provenance.quantization.int8``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from edgeprune.latency.kernels import KernelKey
from edgeprune.latency.predictor import overhead_key
from edgeprune.latency.quiet import QuietWatch
from edgeprune.latency.table import OVERHEAD_KEY_OP, Entry, LatencyTable
from edgeprune.latency.timing import SPINNING_DEFAULT, threading_fields

if TYPE_CHECKING:
    from edgeprune.latency.quantize import ProfileQuantizer

METHOD = (
    "per-kernel ONNX models timed in context: t(context conv + kernel) - t(context conv), paired "
    "interleaved runs in fresh ONNX Runtime sessions, {warmup} warm-up + {runs} timed runs per pass, "
    "{passes} passes spread in time, entry = min over passes of the pass median; kernels reading the "
    "network input are timed alone minus an empty (Identity) call, which is the per-network overhead"
)


class KernelTimer(Protocol):
    """Times a list of ONNX models (interleaved) and says where it ran."""

    def time_models_ms(self, models: list[bytes]) -> list[list[float]]: ...

    def info(self) -> dict[str, Any]: ...


class LocalOrtTimer:
    """ONNX Runtime on this machine."""

    def __init__(
        self, threads: int = 1, warmup: int = 30, runs: int = 100, spinning: bool = SPINNING_DEFAULT
    ):
        self.threads, self.warmup, self.runs, self.spinning = threads, warmup, runs, spinning

    def time_models_ms(self, models: list[bytes]) -> list[list[float]]:
        from edgeprune.latency.timing import time_models_ms

        return time_models_ms(models, self.threads, self.warmup, self.runs, spinning=self.spinning)

    def info(self) -> dict[str, Any]:
        from edgeprune.latency.timing import runtime_info

        return runtime_info(self.threads, self.spinning)


def measure_kernel(
    key: KernelKey, timer: KernelTimer, models: tuple[bytes, bytes] | None = None
) -> tuple[float, float, float, int]:
    """One pass of one kernel: ``(median, p10, p90, count)`` in ms, overhead removed.

    ``models`` are the kernel's ``(baseline, with kernel)`` ONNX models when already exported."""
    from edgeprune.latency.kernel_models import empty_model, kernel_models
    from edgeprune.latency.timing import paired_difference, summarize_ms

    if key.op == OVERHEAD_KEY_OP:
        return summarize_ms(timer.time_models_ms([empty_model()])[0])
    base, full = models or kernel_models(key)
    base_ms, full_ms = timer.time_models_ms([base, full])
    return paired_difference(base_ms, full_ms)


def network_keys(kernels: Sequence[KernelKey]) -> tuple[KernelKey, KernelKey]:
    """``(total, residual)`` entries of an unpruned network: its end-to-end time, and that minus its kernels."""
    from edgeprune.latency.predictor import network_overhead_key

    residual = network_overhead_key(kernels[0], len(kernels), sum(k.weights for k in kernels))
    total = KernelKey(
        OVERHEAD_KEY_OP,
        residual.h,
        residual.w,
        residual.cin,
        residual.mid,
        residual.cout,
        residual.k,
        residual.stride,
        residual.groups,
        "total-" + kernels[0].op,
        residual.precision,
    )
    return total, residual


NETWORK_REPEATS = 3
# a whole network's time is kept once its two fastest passes agree within this share; until then (up
# to NETWORK_EXTRA_PASSES more passes) it is timed again: on a shared VM whole networks ran slow in
# episodes the kernel probe does not see, and the overhead model is fitted on these times
NETWORK_SETTLE = 0.03
NETWORK_EXTRA_PASSES = 6


def _measure_network(onnx_model: bytes, timer: KernelTimer) -> tuple[float, float, float, int]:
    from edgeprune.latency.timing import summarize_ms

    # whole networks are timed NETWORK_REPEATS times a pass (the best kept): their time is what the
    # overhead model is fitted on, and several threads make single medians noisy (3.6 % run to run)
    runs = [summarize_ms(timer.time_models_ms([onnx_model])[0]) for _ in range(NETWORK_REPEATS)]
    return min(runs, key=lambda s: s[0])


def settled(entry: Entry, tolerance: float = NETWORK_SETTLE) -> bool:
    """Whether an entry's two fastest passes agree within ``tolerance`` (its minimum is then no lucky
    outlier and no pass of a slow episode)."""
    m = sorted(entry.pass_medians_ms)
    return len(m) >= 2 and m[1] - m[0] <= tolerance * m[0]


def settle_networks(
    table: LatencyTable,
    keys: Sequence[KernelKey],
    measure: Callable[[KernelKey], None],
    rng: np.random.Generator,
    passes: int,
    on_round: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """After the passes: time again, a round at a time and in a shuffled order, each whole network
    whose two fastest passes disagree, until it has ``passes + NETWORK_EXTRA_PASSES`` passes (a
    bound over every run that resumes the table, so a loud machine does not add rounds to each
    later compile). Returns what it did, for the table's provenance."""
    extra = 0
    for _ in range(NETWORK_EXTRA_PASSES):
        todo = [
            k for k in keys
            if not settled(table.entries[k]) and table.passes_of(k) < passes + NETWORK_EXTRA_PASSES
        ]  # fmt: skip
        if not todo:
            break
        if on_round:
            on_round(len(todo))
        for i in rng.permutation(len(todo)):
            measure(todo[i])
            extra += 1
    unsettled = [k for k in keys if not settled(table.entries[k])]
    return {"tolerance": NETWORK_SETTLE, "extra_passes": extra, "unsettled": [str(k) for k in unsettled]}


def _store_residuals(table: LatencyTable, networks: Sequence[tuple[Sequence[KernelKey], bytes]]) -> None:
    """Each profiled network's end-to-end time minus its kernels (priced as the predictor prices them),
    kept with its sign: below zero where the network runs faster than its kernels timed alone (several
    threads: 24 % faster for ResNet-56 at 2 threads on a 2-core VM), which a clamp at 0 over-predicted."""
    from edgeprune.latency.predictor import LatencyPredictor

    if not networks:
        return
    pricing = LatencyPredictor("measured", networks[0][0][0].precision, table=table)
    for kernels, _ in networks:
        total, residual = network_keys(kernels)
        t = table.entries[total]
        k_ms = sum(pricing.kernel_ms(k) for k in kernels)
        table.entries[residual] = Entry.from_passes(
            [(t.median_ms - k_ms, t.p10_ms - k_ms, t.p90_ms - k_ms, t.count)]
        )


def reference_onnx_path(table_path: Path) -> Path:
    """The reference network kept beside a table (verification times picks against it)."""
    return table_path.with_name(table_path.stem + ".reference.onnx")


def _keep_reference(
    table: LatencyTable, table_path: Path, networks: Sequence[tuple[Sequence[KernelKey], bytes]]
) -> None:
    """Keep the first profiled unpruned network beside the table: its end-to-end time is an entry, so a
    verification can time it interleaved with a pick and tell a busy machine from a wrong table."""
    if not networks or "reference" in table.provenance:
        return
    from edgeprune.atomic import write_bytes_atomic

    kernels, onnx_model = networks[0]
    write_bytes_atomic(reference_onnx_path(table_path), onnx_model)
    table.provenance["reference"] = {
        "entry": str(network_keys(kernels)[0]),
        "onnx": reference_onnx_path(table_path).name,
    }


def timer_fingerprint(info: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint of the device a timer runs on, at the timer's threads and spinning (an agent
    reports its own device)."""
    fp = info.get("fingerprint")
    if not isinstance(fp, dict):  # an agent of an older edgeprune: its device line is all we know
        fp = {"kind": "unknown", "device": info.get("device"), "runtime": info.get("runtime"),
              "runtime_version": info.get("runtime_version")}  # fmt: skip
    threads = info.get("threads", fp.get("threads", 1))
    spinning = info.get("spinning", fp.get("spinning", SPINNING_DEFAULT))
    base = {k: v for k, v in fp.items() if k not in ("threads", "spinning")}
    return {**base, **threading_fields(threads, spinning)}


def new_table(timer: KernelTimer, passes: int, warmup: int, runs: int) -> LatencyTable:
    info = timer.info()
    fingerprint = timer_fingerprint(info)
    prov = {
        "source": "measured",
        "device": info["device"],
        "runtime": info["runtime"],
        "runtime_version": info["runtime_version"],
        **{k: v for k, v in fingerprint.items() if k in ("threads", "spinning")},
        "fingerprint": fingerprint,
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "method": METHOD.format(warmup=warmup, runs=runs, passes=passes),
        "repetitions": {"warmup": warmup, "runs_per_pass": runs, "passes": passes},
        "via": info.get("via", "local"),
    }
    return LatencyTable(prov, {})


def profile_kernels(
    keys: Sequence[KernelKey],
    table_path: Path,
    timer: KernelTimer,
    *,
    passes: int = 3,
    warmup: int = 30,
    runs: int = 100,
    seed: int = 0,
    save_every_s: float = 5.0,
    on_progress: Callable[[int, int, KernelKey | None], None] | None = None,
    networks: Sequence[tuple[Sequence[KernelKey], bytes]] = (),
    quantize: ProfileQuantizer | None = None,
) -> tuple[LatencyTable, int]:
    """Measure ``keys`` (plus the empty-call overhead) for ``passes`` passes; returns (table, measured).

    ``networks`` — ``(kernels, onnx)`` of unpruned networks — are timed end to end in the same
    passes; their time minus their kernels becomes the family's per-network overhead entry.
    Kernels that already have ``passes`` passes in the table at ``table_path`` are skipped.
    ``quantize`` turns each kernel's FP32 models into the models timed (INT8 keys: the target's
    recipe); ``networks`` are passed already in the form they are timed in. The empty call stays an
    Identity model at every precision: it is the runtime's cost of a call, with nothing to quantize.

    On ONNX Runtime on a CPU a :class:`~edgeprune.latency.quiet.QuietWatch` probes the machine between
    measurements, and keys none of whose passes ran quiet are measured again once it is quiet; when
    it stays loud for the watch's ``max_wait_s`` the profiler stops waiting (provenance ``quiet``).
    """
    table = LatencyTable.load(table_path) if table_path.is_file() else new_table(timer, passes, warmup, runs)
    if any(k.op == OVERHEAD_KEY_OP for k in keys):
        raise ValueError("overhead keys are measured by the profiler itself")
    precision = keys[0].precision if keys else "fp32"
    if any(k.precision != precision for k in keys):
        raise ValueError("one profiling run measures one precision")
    if quantize is not None:
        table.provenance.setdefault("quantization", {})[precision] = quantize.describe()
    onnx_of = {network_keys(kernels)[0]: model for kernels, model in networks}
    todo_keys = [overhead_key(precision), *keys, *onnx_of]
    total = sum(max(passes - table.passes_of(k), 0) for k in todo_keys)
    done = 0
    exported: dict[KernelKey, tuple[bytes, bytes]] = {}  # each kernel's ONNX pair, built once
    quantized: dict[bytes, bytes] = {}  # kernels of one resolution share their context model

    def _q(onnx_model: bytes) -> bytes:
        assert quantize is not None
        if onnx_model not in quantized:
            quantized[onnx_model] = quantize(onnx_model)
        return quantized[onnx_model]

    # a CPU shared with other work runs slow in episodes, at one thread too (see edgeprune.latency.quiet)
    watch = (
        QuietWatch(timer, known_best_ms=table.provenance.get("quiet", {}).get("best_ms"))
        if todo_keys and timer.info().get("runtime") == "onnxruntime-cpu"
        else None
    )
    rng = np.random.default_rng(seed)
    last_save = time.monotonic()

    def one_pass(key: KernelKey) -> tuple[float, float, float, int]:
        if key in onnx_of:
            return _measure_network(onnx_of[key], timer)
        if key.op == OVERHEAD_KEY_OP:
            return measure_kernel(key, timer)
        if key not in exported:
            from edgeprune.latency.kernel_models import kernel_models

            pair = kernel_models(key)
            exported[key] = pair if quantize is None else (_q(pair[0]), _q(pair[1]))
        return measure_kernel(key, timer, exported[key])

    def measure(key: KernelKey) -> None:
        nonlocal done, last_save
        with watch.measuring(key) if watch is not None else contextlib.nullcontext():
            stats = one_pass(key)
        table.add_pass(key, *stats)
        done += 1
        if on_progress:
            on_progress(done, total, key)
        if time.monotonic() - last_save > save_every_s:
            table.save(table_path)
            last_save = time.monotonic()

    if on_progress:
        on_progress(done, total, None)
    try:
        for p in range(1, passes + 1):
            for key in [todo_keys[i] for i in rng.permutation(len(todo_keys))]:
                if table.passes_of(key) < p:
                    measure(key)

        def more(n: int) -> None:
            nonlocal total
            total += n

        if watch is not None:
            table.provenance["quiet"] = watch.measure_again(measure, on_round=more)
        if onnx_of:
            table.provenance["network_passes"] = settle_networks(
                table, list(onnx_of), measure, rng, passes, on_round=more
            )
        _store_residuals(table, networks)
        _keep_reference(table, table_path, networks)
    finally:
        table.provenance["date"] = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        table.save(table_path)
    return table, done
