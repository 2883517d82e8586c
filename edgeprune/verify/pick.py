"""Verify a shipped pick on its target runtime: integrity, parity, accuracy, latency, environment.

Order: the manifest's checksums (a changed or corrupt file stops here), the FP model on the runtime
against PyTorch (max |Δ logits|, top-1 agreement on >= ``min_images`` test images), the INT8 model
against the FP32 one (INT8 picks), test accuracy of the shipped precision on the runtime, and its
latency measured with the profiler's method against the table's prediction. The verdict and every
threshold go into ``verify.json``; an integrity failure is written there too and then raised.

On a TensorRT target the engine (``model.engine``) is built here, on the device, from the shipped
ONNX (QDQ model for INT8) — engines are tied to their GPU. For INT8 the FP32 reference then runs on
ONNX Runtime CPU, which every install has.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.errors import EdgepruneError, VerificationError
from edgeprune.export.manifest import Manifest, check_manifest
from edgeprune.export.onnx_export import load_onnx_checked
from edgeprune.export.pick import MODEL_ENGINE, MODEL_INT8, MODEL_ONNX
from edgeprune.latency.timing import stats_of, threading_fields
from edgeprune.runtime import Runtime, Session, get_runtime
from edgeprune.verify.checks import (
    VerifyThresholds,
    accuracy,
    at_least,
    at_most,
    compare_logits,
    informational,
    within,
)
from edgeprune.verify.report import VerifyReport


def _torch_logits(model: Any, x: np.ndarray, batch: int = 250) -> np.ndarray:
    import torch

    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            outs.append(model(torch.from_numpy(x[i : i + batch])).numpy())
    return np.concatenate(outs)


def _sessions(runtime: Runtime, pick_dir: Path, precision: str) -> tuple[Session, str, Session | None]:
    """(FP session, its precision label, INT8 session or None) on ``runtime``."""
    onnx_path = pick_dir / MODEL_ONNX
    load_onnx_checked(onnx_path)
    int8_path = pick_dir / MODEL_INT8
    if precision == "int8":
        load_onnx_checked(int8_path)
    if runtime.name == "tensorrt":
        from edgeprune.runtime.tensorrt_rt import build_engine

        engine = pick_dir / MODEL_ENGINE
        if precision == "int8":
            cache = pick_dir / "calibration.cache"
            build_engine(
                int8_path, engine, precision="int8", calibration_cache=cache if cache.is_file() else None
            )
            fp = get_runtime("onnxruntime-cpu", runtime.threads, runtime.spinning).load(onnx_path)
            return fp, "fp32", runtime.load(engine)
        build_engine(onnx_path, engine, precision=precision)
        return runtime.load(engine), precision, None
    fp = runtime.load(onnx_path)
    return fp, "fp32", (runtime.load(int8_path) if precision == "int8" else None)


def _remote_latency(remote: Any, model_path: Path, passes: int) -> dict[str, Any]:
    """Latency through ``edgeprune agent`` (a :class:`~edgeprune.latency.agent_client.RemoteTimer`),
    summarised as every local timing is (:func:`edgeprune.latency.timing.stats_of`)."""
    data = model_path.read_bytes()
    return stats_of([remote.time_models_ms([data])[0] for _ in range(passes)], remote.warmup).to_dict()


def _latency_with_reference(
    runtime: Runtime, shipped: Session, x: np.ndarray, reference: tuple[Path, float],
    warmup: int, repetitions: int, passes: int, settle: float,
) -> dict[str, Any]:  # fmt: skip
    """The pick's latency, timed in passes paired with the table's reference network.

    Each pass times both networks back to back (which goes first alternates), and gives one paired
    ratio pick / reference: load that lasts a pass slows both and leaves the ratio alone. Until the
    last ``passes`` paired ratios agree within ``settle`` (max / min), more passes are timed, up to
    three times ``passes``; the median of all paired ratios is what the relative check judges.
    """
    ref_path, ref_table_ms = reference
    ref = runtime.load(ref_path)
    shape = tuple(d if isinstance(d, int) else 1 for d in getattr(ref, "input_shape", (1, *x.shape[1:])))
    xr = np.zeros(shape, dtype=np.float32)
    picks: list[Any] = []
    refs: list[Any] = []
    paired: list[float] = []
    order = [(shipped, x, picks), (ref, xr, refs)]

    def unsettled() -> bool:
        last = paired[-passes:]
        return len(paired) < passes or (max(last) / min(last) > settle and len(paired) < 3 * passes)

    while unsettled():
        for session, inputs, into in order if len(paired) % 2 == 0 else order[::-1]:
            into.append(session.benchmark(inputs, warmup=warmup, repetitions=repetitions, passes=1))
        paired.append(picks[-1].median_ms / refs[-1].median_ms)
    best = min(picks, key=lambda s: s.median_ms).to_dict()
    ref_ms = min(s.median_ms for s in refs)
    lat = {
        **best, "passes": len(picks), "count": sum(s.count for s in picks),
        "pass_medians_ms": [s.median_ms for s in picks],
    }  # fmt: skip
    lat["reference"] = {
        "model": str(ref_path), "measured_ms": ref_ms, "table_ms": ref_table_ms, "drift": ref_ms / ref_table_ms,
        "pass_medians_ms": [s.median_ms for s in refs], "paired_ratios": paired,
        "paired_ratio": float(np.median(paired)),
    }  # fmt: skip
    return lat


def environment(runtime: Runtime) -> dict[str, Any]:
    """Runtime and version, CPU/GPU, threads, library versions."""
    import onnx
    import torch

    env: dict[str, Any] = {"runtime": runtime.name, **threading_fields(runtime.threads, runtime.spinning)}
    try:
        env.update(runtime.info())
    except EdgepruneError as err:
        env["runtime_info_error"] = str(err)
    env.update({"torch": torch.__version__, "onnx": onnx.__version__, "python": platform.python_version()})
    return env


def check_pick_integrity(pick_dir: Path, thresholds: VerifyThresholds, target: str | None = None) -> Manifest:
    """Every file's sha256 against the manifest; a failure is written to ``verify.json`` and raised."""
    try:
        return check_manifest(pick_dir)
    except VerificationError as err:
        VerifyReport(Path(pick_dir), target or "?", "?", thresholds.to_dict(), error=str(err)).write()
        raise


def verify_pick(
    pick_dir: Path, *, runtime: Runtime, test_x: Any, test_y: Any, torch_model: Any | None,
    predicted_latency_ms: float | None, latency_source: str, thresholds: VerifyThresholds | None = None,
    target: str | None = None, precision: str | None = None, remote: Any = None,
    warmup: int = 30, repetitions: int = 100, passes: int = 3, prediction_precision: str | None = None,
    reference: tuple[Path, float] | None = None,
) -> VerifyReport:  # fmt: skip
    """Verify ``pick_dir`` and write its ``verify.json``; see the module docstring.

    ``precision``/``target`` default to the manifest's. The latency ratio is judged only against a
    *measured* prediction made for the shipped precision (``prediction_precision``, default: the same). ``remote`` (a RemoteTimer) measures latency
    on a device through the agent; accuracy and parity are then computed here with the same runtime
    kind (the agent API times models, it does not return outputs). ``reference`` — the ONNX network
    kept with this machine's table and its table time (:func:`edgeprune.latency.store.latency_reference`)
    — is timed in passes alternating with the pick, and the pick's ratio is judged relative to the
    reference's (``latency_relative``): a tight band that a busy machine does not break.
    """
    pick_dir = Path(pick_dir)
    th = thresholds or VerifyThresholds()
    manifest = check_pick_integrity(pick_dir, th, target)
    precision = precision or manifest.precision
    report = VerifyReport(pick_dir, target or manifest.target, precision, th.to_dict())
    try:
        judged = latency_source == "measured" and (prediction_precision or precision) == precision
        _verify(report, runtime, test_x, test_y, torch_model, predicted_latency_ms, latency_source, judged,
                th, remote, warmup, repetitions, passes, reference if judged and remote is None else None)  # fmt: skip
    except VerificationError as err:
        report.error = str(err)
        report.write()
        raise
    report.write()
    return report


def _verify(
    report: VerifyReport, runtime: Runtime, test_x: Any, test_y: Any, torch_model: Any,
    predicted_latency_ms: float | None, latency_source: str, judged: bool, th: VerifyThresholds, remote: Any,
    warmup: int, repetitions: int, passes: int, reference: tuple[Path, float] | None = None,
) -> None:  # fmt: skip
    pick_dir, precision = report.pick_dir, report.precision
    x = np.ascontiguousarray(np.asarray(test_x, dtype=np.float32))
    y = np.asarray(test_y)
    if len(x) < th.min_images:
        raise VerificationError(f"verification needs at least {th.min_images} test images, got {len(x)}")
    fp, fp_label, int8 = _sessions(runtime, pick_dir, precision)
    fp_logits = fp.run(x)
    if torch_model is not None:
        ref = _torch_logits(torch_model, x)
        par = compare_logits(ref, fp_logits)
        report.sections["parity_fp32"] = {
            **par,
            "runtime_precision": fp_label,
            "reference": "PyTorch eager (fp32)",
        }
        tol, agree = (th.fp16_max_abs_logit_diff, th.fp16_min_top1_agreement) if fp_label == "fp16" else (
            th.fp32_max_abs_logit_diff, th.fp32_min_top1_agreement)  # fmt: skip
        report.checks += [
            at_most(f"{fp_label}_max_abs_logit_diff", par["max_abs_logit_diff"], tol),
            at_least(f"{fp_label}_top1_agreement", par["top1_agreement"], agree),
        ]
        report.sections["accuracy_pytorch"] = accuracy(ref, y)
    else:
        report.sections["parity_fp32"] = {
            "skipped": "no weights.pt / model name in the pick: PyTorch reference unavailable"
        }
    acc_fp = accuracy(fp_logits, y)
    shipped = fp
    acc: dict[str, Any] = {"images": len(x), f"{fp_label}": acc_fp}
    if int8 is not None:
        q_logits = int8.run(x)
        par8 = compare_logits(fp_logits, q_logits)
        acc_q = accuracy(q_logits, y)
        drop = acc_fp - acc_q
        report.sections["parity_int8"] = {
            **par8,
            "reference": f"{fp_label} on the runtime",
            "accuracy_drop": drop,
        }
        report.checks += [
            at_least("int8_top1_agreement", par8["top1_agreement"], th.int8_min_top1_agreement),
            at_most("int8_accuracy_drop", drop, th.int8_max_accuracy_drop),
        ]
        acc["int8"] = acc_q
        shipped = int8
    acc["shipped"] = acc[precision if precision in acc else fp_label]
    report.sections["accuracy"] = acc
    if runtime.name == "tensorrt" and remote is None:
        model_file = pick_dir / MODEL_ENGINE
    else:  # ONNX Runtime here, or the agent (which builds its own engine from the shipped ONNX)
        model_file = pick_dir / (MODEL_INT8 if precision == "int8" else MODEL_ONNX)
    if remote is not None:
        lat = _remote_latency(remote, model_file, passes)
        env = {**environment(runtime), "latency_measured_by": remote.info()}
    elif reference is not None:
        settle = th.latency_relative_max
        lat = _latency_with_reference(runtime, shipped, x[:1], reference, warmup, repetitions, passes, settle)
        env = environment(runtime)
    else:
        lat = shipped.benchmark(x[:1], warmup=warmup, repetitions=repetitions, passes=passes).to_dict()
        env = environment(runtime)
    lat.update({"model": model_file.name, **threading_fields(runtime.threads, runtime.spinning), "predicted_ms": predicted_latency_ms,
                "prediction_source": latency_source})  # fmt: skip
    if predicted_latency_ms:
        ratio = lat["median_ms"] / predicted_latency_ms
        lat["ratio_measured_to_predicted"] = ratio
        if judged:
            report.checks.append(within("latency_ratio", ratio, th.latency_ratio_min, th.latency_ratio_max))
            if "reference" in lat:
                ref_lat = lat["reference"]
                relative = ref_lat["paired_ratio"] * ref_lat["table_ms"] / predicted_latency_ms
                lat["relative_ratio"] = relative
                note = (
                    f"pick / reference network timed in paired passes (median of {len(ref_lat['paired_ratios'])}), "
                    f"over predicted / table time (the machine ran {ref_lat['drift']:.2f}x its profiling-time speed)"
                )
                hi = th.latency_relative_max
                report.checks.append(within("latency_relative", relative, 1 / hi, hi, note))
        elif latency_source != "measured":
            note = "the prediction is an estimate: recorded, not judged"
            report.checks.append(informational("latency_ratio", ratio, note))
        else:
            note = "the prediction is for another precision than the shipped model: recorded, not judged"
            report.checks.append(informational("latency_ratio", ratio, note))
    report.sections["latency"] = lat
    report.sections["environment"] = env
