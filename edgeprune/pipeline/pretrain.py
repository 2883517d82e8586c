"""The base network of a run when no weights are given (trained from scratch, or a transfer network's
new head), and the check that it learned something: training from scratch is a choice, not a surprise.
"""

from __future__ import annotations

import math

import torch

from edgeprune.errors import UntrainedModelError
from edgeprune.models.transfer import parse_transfer_spec
from edgeprune.pipeline.inputs import Inputs
from edgeprune.progress import Reporter
from edgeprune.train import evaluate_accuracy, fine_tune

SMALL_MODEL_MACS = 10_000_000


def training_threads(model: torch.nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Intra-op threads for training: one for small networks (more threads only add synchronisation,
    and spin-waiting threads slow down badly on a shared machine), torch's default otherwise."""
    from edgeprune.graph import count_macs

    return (
        1 if count_macs(model, torch.zeros(1, *input_shape)) < SMALL_MODEL_MACS else torch.get_num_threads()
    )


# --- transfer mode (edgeprune.models.transfer) ------------------------------------------------------
def train_head(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> None:
    """Train only the transfer head: the backbone is frozen (parameters and BN statistics), its features
    are computed once and the head is fitted on them (no augmentation)."""
    from edgeprune.models.transfer import backbone_features, freeze_backbone

    net = freeze_backbone(model)
    feats = backbone_features(net, x)
    fine_tune(net.head, feats, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    net.eval()


def train_new_head(inputs: Inputs, reporter: Reporter) -> float:
    """The transfer pretrain stage: the new head is trained on the frozen backbone's features (weights
    and BN statistics as pretrained)."""
    cfg = inputs.cfg.pretrain
    reporter.stage(
        "pretrain",
        f"training the new head ({inputs.cfg.model.head_hidden} hidden neurons) for {cfg.epochs} epochs, "
        f"backbone {parse_transfer_spec(inputs.cfg.model.name)[0]} frozen",
    )
    d = inputs.data
    # no BN recalibration here: re-estimating the statistics on the new task's 6 of CIFAR-10's 10 classes
    # cost 5.5 points of test accuracy on the animal task (81.0% -> 75.5%; benchmarks/transfer_mode.py)
    train_head(inputs.loaded.model, d.train.x, d.train.y, epochs=cfg.epochs, lr=cfg.lr,
               batch_size=cfg.batch_size, seed=inputs.cfg.search.seed)  # fmt: skip
    acc = evaluate_accuracy(inputs.loaded.model, d.val.x, d.val.y)
    reporter.info(f"validation accuracy of the new head: {acc:.2%}")
    return acc


# --- training from scratch -------------------------------------------------------------------------
UNTRAINED_MIN_MARGIN = 0.02


def chance_accuracy(y: torch.Tensor, num_classes: int) -> float:
    """The accuracy of guessing: uniform guessing (1/classes) or always the majority class, whichever
    is higher."""
    counts = torch.bincount(y.long(), minlength=num_classes)
    return max(1.0 / num_classes, float(counts.max()) / max(1, len(y)))


def untrained_below(chance: float, n: int) -> float:
    """The accuracy a network trained from scratch must exceed to count as trained: chance plus two
    binomial standard errors of ``n`` validation images (at least 2 points), so a lucky guesser on a
    small split does not pass."""
    return chance + max(UNTRAINED_MIN_MARGIN, 2.0 * math.sqrt(chance * (1.0 - chance) / max(1, n)))


def check_trained(inputs: Inputs, acc: float) -> dict[str, float]:
    """Refuse a network trained from scratch that ended at or near chance (unless allowed)."""
    d = inputs.data
    chance = chance_accuracy(d.val.y, d.num_classes)
    bar = untrained_below(chance, len(d.val))
    info = {"val_accuracy": round(acc, 6), "chance_accuracy": round(chance, 6)}
    if acc > bar or inputs.cfg.pretrain.allow_untrained:
        return info
    raise UntrainedModelError(
        f"{inputs.cfg.model.name} trained from scratch for {inputs.cfg.pretrain.epochs} epochs reached "
        f"{acc:.1%} validation accuracy, no better than chance ({chance:.1%}; it needs above {bar:.1%}): "
        "give --weights of a trained network, train longer (pretrain.epochs in --config), or add "
        "--allow-untrained to compress it anyway"
    )


def pretrain(inputs: Inputs, reporter: Reporter) -> float:
    """Train the network from scratch (the transfer head, in transfer mode); returns validation accuracy."""
    cfg = inputs.cfg.pretrain
    if inputs.cfg.model.transfer:
        return train_new_head(inputs, reporter)
    d = inputs.data
    reporter.stage(
        "pretrain",
        f"no --weights: training {inputs.cfg.model.name} from scratch for {cfg.epochs} epochs on "
        f"{len(d.train):,} images (--weights FILE compresses a trained network instead)",
    )
    fine_tune(
        inputs.loaded.model,
        d.train.x,
        d.train.y,
        epochs=cfg.epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        seed=inputs.cfg.search.seed,
    )
    inputs.loaded.model.eval()
    acc = evaluate_accuracy(inputs.loaded.model, d.val.x, d.val.y)
    chance = chance_accuracy(d.val.y, d.num_classes)
    reporter.info(f"validation accuracy after training: {acc:.2%} (chance {chance:.2%})")
    return acc


# --- the run directory -----------------------------------------------------------------------------
