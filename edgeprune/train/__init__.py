"""Evaluation and training helpers: top-1 accuracy, BatchNorm recalibration, fine-tuning.

Used by the search (cheap scoring of candidates) and by finalize (fine-tuning the picks).
"""

from edgeprune.train.batchnorm import recalibrate_bn, recalibrate_changed_bn
from edgeprune.train.evaluate import evaluate_accuracy, predict_logits
from edgeprune.train.finetune import fine_tune

__all__ = ["evaluate_accuracy", "fine_tune", "predict_logits", "recalibrate_bn", "recalibrate_changed_bn"]
