"""Verify (after runtime): parity, accuracy and latency of a shipped pick on its target runtime."""

from edgeprune.verify.checks import Check, VerifyThresholds, compare_logits
from edgeprune.verify.pick import verify_pick
from edgeprune.verify.rebuild import rebuild_torch_model
from edgeprune.verify.report import VERIFY_NAME, VerifyReport

__all__ = [
    "VERIFY_NAME",
    "Check",
    "VerifyReport",
    "VerifyThresholds",
    "compare_logits",
    "rebuild_torch_model",
    "verify_pick",
]
