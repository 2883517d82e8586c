"""The PyTorch reference of a verification: the pick rebuilt from its directory.

The rebuild itself is :func:`edgeprune.export.rebuild.load_pick` (model name from the manifest,
``plan.json``, ``weights.pt``, ``buffers.pt``); here only the verification's rule: a pick that cannot
be rebuilt (no weights, no model name — e.g. an ensemble) is verified without the PyTorch comparison.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeprune.export.manifest import Manifest
from edgeprune.export.pick import WEIGHTS


def rebuild_torch_model(pick_dir: Path, manifest: Manifest) -> Any | None:
    """The pick as an eval-mode ``nn.Module``, or ``None`` when the directory lacks weights or a model name."""
    from edgeprune.export.rebuild import load_pick

    pick_dir = Path(pick_dir)
    if manifest.model_name is None or not (pick_dir / WEIGHTS).is_file():
        return None
    return load_pick(
        pick_dir, model_name=manifest.model_name, num_classes=len(manifest.class_names),
        input_shape=manifest.input_shape[1:],
    )  # fmt: skip
