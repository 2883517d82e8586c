"""Influential filters (MO-EvoPruneDeepTL): how often each filter survives across the front.

``influential_filters.csv`` has one row per (group, channel) with the fraction of front members that
keep it; the report shows the same as a heatmap, one row per prunable group.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeprune.atomic import write_text_atomic

if TYPE_CHECKING:
    import torch

    from edgeprune.graph import PruningPlan

INFLUENCE_CSV = "influential_filters.csv"


def influential_filters(
    base: torch.nn.Module,
    example: torch.Tensor,
    channel_multiple: int,
    plans: Sequence[PruningPlan],
    csv_path: Path,
) -> str:
    """Write ``csv_path`` (for each filter of ``base``, the fraction of ``plans`` that keep it) and
    return the report's heatmap section (HTML with the PNG inlined).

    ``base`` is the network the plans prune, with the weights they were chosen on (the run's base
    network): which channels a plan keeps is decided by their importance in those weights.
    """
    from edgeprune.ensemble import keep_frequency, kept_masks
    from edgeprune.graph import analyze

    analysis = analyze(base, example, channel_multiple)
    masks = [kept_masks(base, analysis, plan, example) for plan in plans]
    freq = keep_frequency(masks)
    write_influence_csv(csv_path, freq)
    png = base64.b64encode(influence_png(freq, len(masks))).decode()
    return (
        "<p class='sub'>fraction of the front's members that keep each filter "
        f"({INFLUENCE_CSV} has the figures)</p>"
        f'<img alt="influential filters" src="data:image/png;base64,{png}">'
    )


def write_influence_csv(path: Path, freq: Mapping[str, np.ndarray]) -> Path:
    """Rows ``group, channel, kept_fraction`` in group order."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["group", "channel", "kept_fraction"])
    for group, values in freq.items():
        for ch, v in enumerate(values):
            w.writerow([group, ch, f"{float(v):.4f}"])
    return write_text_atomic(path, buf.getvalue())


def influence_png(freq: Mapping[str, np.ndarray], n_members: int) -> bytes:
    """A heatmap: one row per group, one column per channel (blank beyond a group's width)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    groups = list(freq)
    width = max((len(v) for v in freq.values()), default=1)
    grid = np.full((len(groups), width), np.nan)
    for i, g in enumerate(groups):
        grid[i, : len(freq[g])] = freq[g]
    fig, ax = plt.subplots(figsize=(min(14, 3 + width * 0.12), max(2.5, 0.22 * len(groups) + 1.2)))
    im = ax.imshow(grid, aspect="auto", cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(groups)))
    ax.set_yticklabels(groups, fontsize=7)
    ax.set_xlabel("channel (filter) index")
    ax.set_title(f"how often each filter is kept across the front ({n_members} members)")
    fig.colorbar(im, ax=ax, label="kept fraction")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
