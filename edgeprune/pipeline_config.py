"""The resolved config of ``edgeprune compile``: one versioned document, written as ``config.yaml``.

CLI flags override ``--config FILE`` values, which override these defaults. ``model`` / ``data`` left
empty mean the default job (digits-resnet trained on scikit-learn's digits, no download).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from edgeprune.config import CONFIG_VERSION, DataConfig, FrozenConfig, ModelConfig
from edgeprune.rundir import PICK_NAMES, PickName
from edgeprune.search.config import SearchConfig

# Fields that never change a run's results: ``--resume`` accepts any change to them. ``finalize.picks`` names
# which picks are fine-tuned and shipped; each pick's outcome is its own, so a resumed run may add one.
RESULT_NEUTRAL = (
    "search.workers", "search.executor", "search.ray_address", "pretrain.allow_untrained", "finalize.picks",
)  # fmt: skip


def config_stage(field: str) -> str:
    """The first stage of ``edgeprune compile`` whose outcome a dotted config field changes: ``prepare``
    (model, data, target, pretraining: the base network and the data splits), ``search``, ``finalize``
    or ``ship``. ``--resume`` accepts a changed field only while that stage has finished nothing."""
    if field == "ship.precision":
        return "search"  # the search's latency objective is the shipped precision's
    head = field.split(".", 1)[0]
    return head if head in ("search", "finalize", "ship") else "prepare"


class PretrainConfig(FrozenConfig):
    """Training from scratch, used only when the model has no weights (the default job)."""

    epochs: int = Field(default=30, ge=1)
    lr: float = Field(default=0.05, gt=0)
    batch_size: int = Field(default=64, ge=1)
    # a network trained from scratch that ends at or near chance stops the run (edgeprune.pipeline.inputs
    # .check_trained) unless this is set (--allow-untrained)
    allow_untrained: bool = False


class FinalizeConfig(FrozenConfig):
    """Fine-tuning of the picks (and, for an honest accuracy drop, of the unpruned network)."""

    epochs: int = Field(default=3, ge=0)
    lr: float = Field(default=0.01, gt=0)
    batch_size: int = Field(default=128, ge=1)
    distill: bool = False
    kd_alpha: float = Field(default=0.5, ge=0, le=1)
    temperature: float = Field(default=4.0, gt=0)
    baseline: bool = True  # fine-tune the unpruned network with the same recipe
    # forward passes of fine-tuning in bfloat16 (CPU autocast); auto: where a training step measured on this CPU
    # is at least 10 % faster in it (pipeline.stages.finetune_bf16)
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    # which of the search's picks are fine-tuned, exported and verified (the search names all three; each
    # costs a fine-tuning): e.g. only the knee
    picks: tuple[PickName, ...] = PICK_NAMES

    @field_validator("picks")
    @classmethod
    def _picks_in_order(cls, value: tuple[PickName, ...]) -> tuple[PickName, ...]:
        if not value:
            raise ValueError(f"name at least one pick of {', '.join(PICK_NAMES)}")
        return tuple(n for n in PICK_NAMES if n in value)  # one of each, in the run directory's order


class ShipConfig(FrozenConfig):
    """Export and verification."""

    precision: Literal["auto", "fp32", "fp16", "int8"] = "auto"  # auto: the target profile's precision
    dynamic_batch: bool = False
    verify_images: int = Field(default=1000, ge=10)

    @model_validator(mode="before")
    @classmethod
    def _drop_legacy_opset(cls, data: Any) -> Any:
        """``opset: 17``, which config.yaml of earlier runs holds, was never used (export always writes
        opset 17): it is dropped so those runs still resume; another value is refused as unknown."""
        if isinstance(data, dict) and data.get("opset") == 17:
            data = {k: v for k, v in data.items() if k != "opset"}
        return data


class CompileConfig(FrozenConfig):
    """Everything ``edgeprune compile`` needs."""

    version: int = CONFIG_VERSION
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    target: str = "host-cpu"
    # intra-op threads the target runs at (default: its profile's); a table holds one thread count
    threads: int | None = Field(default=None, ge=1)
    search: SearchConfig = SearchConfig()
    pretrain: PretrainConfig = PretrainConfig()
    finalize: FinalizeConfig = FinalizeConfig()
    ship: ShipConfig = ShipConfig()

    def differences(self, other: CompileConfig, ignore: tuple[str, ...] = RESULT_NEUTRAL) -> list[str]:
        """Dotted names of fields whose values differ (what changed between two runs)."""
        out: list[str] = []

        def walk(a: Any, b: Any, prefix: str) -> None:
            if isinstance(a, dict) and isinstance(b, dict):
                for k in sorted(set(a) | set(b)):
                    walk(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else k)
            elif a != b and prefix not in ignore:
                out.append(prefix)

        walk(self.to_dict(), other.to_dict(), "")
        return out
