"""``edgeprune verify PICK_DIR --target T``: resolve everything a verification needs, run it, judge it.

The CLI only parses and prints; this module loads the target profile, the test data (normalised with
the manifest's mean/std), rebuilds the PyTorch model from the pick, picks the runtime the target
names, and raises :class:`VerificationError` (non-zero exit) when a check fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeprune.errors import ConfigError, EdgepruneError, VerificationError
from edgeprune.verify.checks import VerifyThresholds
from edgeprune.verify.pick import check_pick_integrity, verify_pick
from edgeprune.verify.rebuild import rebuild_torch_model
from edgeprune.verify.report import VerifyReport


def _predicted(profile: Any, manifest: Any, torch_model: Any) -> tuple[float | None, str]:
    """The pick's latency predicted *here*, from this machine's view of the target's table; else the
    manifest's figure (predicted where the pick was made), labelled by where its table stands now: a
    figure measured on another machine is not ``measured`` here."""
    from edgeprune.latency import extract_kernels, predictor_for
    from edgeprune.latency.store import figure_source

    here = figure_source(profile)
    if torch_model is not None:
        try:
            kernels = extract_kernels(torch_model, tuple(manifest.input_shape[1:]), profile.precision)
            pred = predictor_for(profile, kernels)
            return pred.predict_kernels_ms(kernels), pred.source
        except EdgepruneError:
            pass  # this table cannot price the pick: fall back on the manifest's figure
    if manifest.target != profile.name:
        return None, here
    source = manifest.latency_source
    return manifest.expected_latency_ms, (
        source if source != "measured" or here == "measured" else "measured elsewhere"
    )


def run_verify(
    pick_dir: Path, *, target: str, data: str, remote: str | None = None, token: str | None = None,
    images: int = 1000, thresholds: VerifyThresholds | None = None, repetitions: int = 100, passes: int = 3,
    seed: int = 0,
) -> VerifyReport:  # fmt: skip
    """Verify ``pick_dir`` for ``target`` on test images from ``data``; raise if any check fails."""
    from edgeprune.config import DataConfig
    from edgeprune.data import load_data
    from edgeprune.latency import load_profile
    from edgeprune.latency.store import latency_reference
    from edgeprune.runtime import get_runtime

    pick_dir = Path(pick_dir)
    if not pick_dir.is_dir():
        raise VerificationError(f"pick directory not found: {pick_dir}")
    profile = load_profile(target)
    th = thresholds or VerifyThresholds()
    manifest = check_pick_integrity(pick_dir, th, profile.name)  # fail fast, before loading data
    if images < th.min_images:
        th = th.model_copy(update={"min_images": images})
    bundle = load_data(DataConfig(source=data, mean=tuple(manifest.mean), std=tuple(manifest.std)))
    test = bundle.test
    if len(test) > images:  # a seeded sample: test splits may be ordered by class
        import numpy as np
        import torch

        idx = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(test), images, replace=False)))
        test = type(test)(test.x[idx], test.y[idx])
    if tuple(test.x.shape[1:]) != tuple(manifest.input_shape[1:]):
        raise VerificationError(
            f"the data's images are {tuple(test.x.shape[1:])} but the model expects {tuple(manifest.input_shape[1:])} (manifest)"
        )
    torch_model = rebuild_torch_model(pick_dir, manifest)
    predicted_ms, source = _predicted(profile, manifest, torch_model)
    timer = None
    if remote is not None:
        from edgeprune.latency.agent_client import RemoteTimer

        if profile.runtime != "onnxruntime-cpu" and profile.runtime != "tensorrt":
            raise ConfigError(f"--remote cannot time runtime {profile.runtime}")
        precision = (
            "fp32" if profile.runtime == "onnxruntime-cpu" else manifest.precision
        )  # ORT: the model carries it
        timer = RemoteTimer(
            remote, token, profile.runtime, precision, profile.threads, runs=repetitions,
            spinning=profile.spinning,
        )  # fmt: skip
    runtime = get_runtime(profile.runtime, profile.threads, profile.spinning)
    if timer is not None and profile.runtime == "tensorrt":
        # the agent times the engine on the device but returns no outputs: parity and accuracy run here on
        # ONNX Runtime CPU (recorded in verify.json's environment)
        runtime = get_runtime("onnxruntime-cpu", 1)
    report = verify_pick(
        pick_dir, runtime=runtime, test_x=test.x.numpy(), test_y=test.y.numpy(),
        torch_model=torch_model, predicted_latency_ms=predicted_ms, latency_source=source, thresholds=th,
        target=profile.name, remote=timer, repetitions=repetitions, passes=passes,
        prediction_precision=profile.precision,  # the profile's table is for its own precision
        reference=latency_reference(profile) if timer is None and runtime.name == profile.runtime else None,
    )  # fmt: skip
    if not report.passed:
        raise VerificationError(report.summary_line() + f" (details: {pick_dir / 'verify.json'})")
    return report
