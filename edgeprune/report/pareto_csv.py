"""``pareto.csv``: one row per front member (docs/reference/run-directory.md), with a flag per pick."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from edgeprune.atomic import write_text_atomic
from edgeprune.rundir import PICK_NAMES
from edgeprune.search.result import SearchResult
from edgeprune.space import SearchSpace

# latency_ms is at the shipped precision; latency_fp32_ms the FP32 prediction beside it (searches at
# another precision, where the device's table has FP32 kernels; else empty)
COLUMNS = (
    "rank", "genome", "error", "params", "macs", "latency_ms", "latency_source", "latency_fp32_ms",
    "robust_error", "accurate", "knee", "fast", "plan",
)  # fmt: skip


def pareto_rows(result: SearchResult) -> list[dict[str, str]]:
    """The rows of ``pareto.csv`` as strings (stable formatting: the file is compared across runs)."""
    picks = {idx: name for name, idx in result.picks.items()}
    rows = []
    for rank, i in enumerate(result.front):
        c = result.candidates[i]
        m = c.metrics
        rows.append(
            {
                "rank": str(rank),
                "genome": " ".join(str(v) for v in c.genome),
                "error": f"{m['error']:.6f}",
                "params": str(int(m["params"])),
                "macs": str(int(m["macs"])),
                "latency_ms": f"{m['latency_ms']:.6f}",
                "latency_source": result.latency_source,
                "latency_fp32_ms": f"{m['latency_fp32_ms']:.6f}" if "latency_fp32_ms" in m else "",
                "robust_error": f"{m['robust_error']:.6f}" if "robust_error" in m else "",
                **{
                    str(name): "1" if picks.get(i) == name or result.picks[name] == i else "0"
                    for name in PICK_NAMES
                },
                "plan": c.plan.to_json(),
            }
        )
    return rows


def write_pareto_csv(path: Path, result: SearchResult, space: SearchSpace) -> Path:
    """Write the front atomically."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(pareto_rows(result))
    return write_text_atomic(path, buf.getvalue())
