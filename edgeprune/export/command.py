"""``edgeprune export``: ship one network (optionally pruned by a plan) as a pick directory, outside ``compile``.

Rebuilds the model (:func:`edgeprune.export.rebuild.rebuild`: family + weights, pruned by ``plan.json``
if given), writes ``weights.pt`` / ``plan.json`` / ``buffers.pt`` so the pick rebuilds alone, predicts
its latency on the target (the label says whether the table is measured or an estimate) and calls
:func:`ship_pick`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgeprune.errors import ConfigError, EdgepruneError
from edgeprune.export.int8 import load_recipe
from edgeprune.export.pick import PLAN, WEIGHTS, ShippedPick, ship_pick
from edgeprune.export.rebuild import rebuild


def export_pick(
    out: Path, *, model_name: str, data: str, target: str, weights: Path | None = None, plan: Path | None = None,
    precision: str | None = None, aoti: bool = False, dynamic_batch: bool = False,
) -> tuple[ShippedPick, float | None, str]:  # fmt: skip
    """Export into ``out``; returns the shipped pick, the predicted latency (ms or None) and its source."""
    import torch

    from edgeprune.config import DataConfig
    from edgeprune.data import load_data
    from edgeprune.graph import PruningPlan
    from edgeprune.latency import extract_kernels, load_profile, predictor_for
    from edgeprune.latency.store import figure_source

    profile = load_profile(target)
    precision = precision or profile.precision
    if precision not in ("fp32", "fp16", "int8"):
        raise ConfigError(f"--precision must be fp32, fp16 or int8, got {precision!r}")
    bundle = load_data(DataConfig(source=data))
    example = torch.zeros(1, *bundle.input_shape)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out} is not empty")
    parsed = None
    if plan is not None:  # a bad plan fails before anything is written
        try:
            parsed = PruningPlan.from_json(Path(plan).read_text())
        except OSError as err:
            raise ConfigError(f"cannot read plan {plan}: {err}") from None
    # --weights are the unpruned network's: the plan cuts channels by their importance in them
    model = rebuild(
        model_name, bundle.num_classes, input_shape=bundle.input_shape, base_weights=weights, plan=parsed
    )
    out.mkdir(parents=True, exist_ok=True)
    if plan is not None:
        shutil.copyfile(plan, out / PLAN)
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, out / WEIGHTS)
    try:
        kernels = extract_kernels(model, bundle.input_shape, profile.precision)
        predictor = predictor_for(profile, kernels)
        predicted, source = predictor.predict_kernels_ms(kernels), predictor.source
    except EdgepruneError:
        predicted, source = None, figure_source(profile)
    shipped = ship_pick(
        out, model, example, target=profile.name, precision=precision, mean=bundle.mean, std=bundle.std,
        class_names=bundle.classes, expected_latency_ms=predicted, latency_source=source, model_name=model_name,
        calib_x=bundle.calib.x if precision == "int8" else None,
        recipe=load_recipe(profile.name) if precision == "int8" else None, aoti=aoti, dynamic_batch=dynamic_batch,
        threads=profile.threads, spinning=profile.spinning,
    )  # fmt: skip
    return shipped, predicted, source
