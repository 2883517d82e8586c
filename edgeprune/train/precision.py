"""Whether bfloat16 autocast makes fine-tuning faster on this CPU: measured on the network, not assumed.

A CPU flag says only that bfloat16 arithmetic exists. On a 2-core AMD EPYC with AVX512-BF16 a
ResNet-56 training step (batch 128, channels-last) took 0.47 s in bfloat16 against 0.78 s in float32;
on a 2-core Intel Xeon with the same flag it took 0.88–0.93 s against 0.75 s. So ``auto`` times a few
steps of each, side by side, on copies of the network it is about to fine-tune.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from edgeprune.latency.timing import interleaved_benchmark
from edgeprune.train.finetune import train_step

# bfloat16 is chosen only when its step is at least this much faster (its rounding costs a little accuracy)
MIN_BF16_SPEEDUP = 1.1


@dataclass(frozen=True)
class StepTiming:
    """One training step of the network, float32 against bfloat16 autocast, timed side by side."""

    fp32_ms: float
    bf16_ms: float

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.bf16_ms

    @property
    def use_bf16(self) -> bool:
        return self.speedup >= MIN_BF16_SPEEDUP

    def to_dict(self) -> dict[str, float | bool]:
        return {"fp32_step_ms": round(self.fp32_ms, 2), "bf16_step_ms": round(self.bf16_ms, 2),
                "bf16": self.use_bf16}  # fmt: skip


def time_training_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, teacher: nn.Module | None = None,
    repetitions: int = 3, passes: int = 2,
) -> StepTiming:  # fmt: skip
    """Time one fine-tuning step (as :func:`~edgeprune.train.fine_tune` takes it: channels-last images,
    SGD, the teacher's forward pass when given) in float32 and under bfloat16 autocast, interleaved, on
    copies of ``model`` and ``teacher`` (the caller's networks are untouched)."""
    layout = torch.channels_last if x.dim() == 4 else torch.contiguous_format
    student = copy.deepcopy(model).train().to(memory_format=layout)  # type: ignore[call-overload]
    tutor = None if teacher is None else copy.deepcopy(teacher).eval().to(memory_format=layout)  # type: ignore[call-overload]
    opt = torch.optim.SGD([p for p in student.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    n = min(batch_size, len(x))
    xb, yb = x[:n].contiguous(memory_format=layout), y[:n]

    def step(bf16: bool) -> None:
        train_step(student, opt, xb, yb, teacher=tutor, bf16=bf16)

    fp32, bf16 = interleaved_benchmark(
        [lambda: step(False), lambda: step(True)], warmup=2, repetitions=repetitions, passes=passes
    )
    return StepTiming(fp32_ms=fp32.median_ms, bf16_ms=bf16.median_ms)
