"""fine_tune: deterministic given the seed, learns, distils; augmentation is a crop + flip."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from edgeprune.config import DataConfig, ModelConfig
from edgeprune.data import load_data
from edgeprune.errors import ConfigError
from edgeprune.models import build_model
from edgeprune.train import evaluate_accuracy, fine_tune
from edgeprune.train.finetune import augment, distillation_loss


@pytest.fixture(scope="module")
def digits():
    return load_data(DataConfig(source="digits"))


def _net():
    torch.manual_seed(0)
    return build_model(ModelConfig(name="digits-resnet")).model


def test_same_seed_same_weights_other_seed_other_weights(digits):
    x, y = digits.train.x[:256], digits.train.y[:256]
    a = fine_tune(_net(), x, y, epochs=1, lr=0.05, batch_size=64, seed=3)
    b = fine_tune(_net(), x, y, epochs=1, lr=0.05, batch_size=64, seed=3)
    c = fine_tune(_net(), x, y, epochs=1, lr=0.05, batch_size=64, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert not a.training


def test_fine_tuning_learns_and_distils(digits):
    model = _net()
    before = evaluate_accuracy(model, digits.val.x, digits.val.y)
    fine_tune(model, digits.train.x, digits.train.y, epochs=2, lr=0.05, batch_size=64, seed=0)
    after = evaluate_accuracy(model, digits.val.x, digits.val.y)
    assert before < 0.3 < 0.85 < after  # measured: 0.109 -> 0.942
    student = _net()
    fine_tune(
        student,
        digits.train.x,
        digits.train.y,
        epochs=2,
        lr=0.05,
        batch_size=64,
        seed=0,
        teacher=model,
        kd_alpha=0.7,
    )
    assert evaluate_accuracy(student, digits.val.x, digits.val.y) > 0.75  # measured: 0.864


def test_bf16_forward_passes_learn_and_keep_float32_weights(digits):
    fp32 = fine_tune(_net(), digits.train.x, digits.train.y, epochs=2, lr=0.05, batch_size=64, seed=0)
    model = _net()
    spy: list[torch.dtype] = []
    hook = model.linear.register_forward_hook(lambda _m, _i, out: spy.append(out.dtype))
    fine_tune(model, digits.train.x, digits.train.y, epochs=2, lr=0.05, batch_size=64, seed=0, bf16=True)
    hook.remove()
    assert spy and all(d == torch.bfloat16 for d in spy)  # the forward passes ran in bfloat16
    assert all(p.dtype == torch.float32 and p.is_contiguous() for p in model.parameters())
    acc, acc32 = (evaluate_accuracy(m, digits.val.x, digits.val.y) for m in (model, fp32))
    assert acc > 0.85 and abs(acc - acc32) < 0.05


def test_a_failed_fine_tune_gives_the_teacher_back_in_its_layout(digits):
    """Training runs in channels-last; the caller's teacher is back in the default layout even when
    training stops with an error."""
    teacher, student = _net(), _net()
    calls = []

    def fail_on_second(_m, _i, _out):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("stop")

    student.linear.register_forward_hook(fail_on_second)
    with pytest.raises(RuntimeError, match="stop"):
        fine_tune(
            student, digits.train.x, digits.train.y, epochs=1, lr=0.05, batch_size=64, seed=0, teacher=teacher
        )
    assert len(calls) == 2
    assert all(p.is_contiguous() for net in (teacher, student) for p in net.parameters())


def test_distillation_loss():
    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 3, 0])
    ce = F.cross_entropy(logits, labels)
    assert torch.allclose(distillation_loss(logits, labels, None, 0.5, 4.0), ce)
    assert torch.allclose(distillation_loss(logits, labels, logits.clone(), 0.5, 4.0), 0.5 * ce, atol=1e-6)
    assert distillation_loss(logits, labels, -logits, 0.5, 4.0) > 0.5 * ce


def test_augment_is_a_padded_crop_and_flip():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    out = augment(x, torch.Generator().manual_seed(0), pad=0)
    for i in range(2):
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1))
    out = augment(x, torch.Generator().manual_seed(1), pad=4)
    assert out.shape == x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    for i in range(2):  # every output is a 32x32 window of the padded image (maybe mirrored)
        found = any(
            torch.equal(out[i], padded[i, :, dy : dy + 32, dx : dx + 32])
            or torch.equal(out[i].flip(-1), padded[i, :, dy : dy + 32, dx : dx + 32])
            for dy in range(9)
            for dx in range(9)
        )
        assert found


def test_bad_arguments_are_config_errors(digits):
    with pytest.raises(ConfigError):
        fine_tune(_net(), digits.train.x[:8], digits.train.y[:8], epochs=1, lr=0.0)
    with pytest.raises(ConfigError):
        fine_tune(_net(), digits.train.x[:8], digits.train.y[:8], epochs=1, kd_alpha=2.0)
