"""The front as pictures: error vs latency, error vs params (coloured by the third objective), picks
highlighted, optional baselines; and hypervolume per generation. PNG bytes, matplotlib's Agg backend."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

from edgeprune.search.result import SearchResult

PICK_STYLE = {"accurate": ("#1f77b4", "o"), "knee": ("#d62728", "*"), "fast": ("#2ca02c", "D")}


def _figure(ncols: int, width: float = 5.2, height: float = 4.2):  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return plt, fig, axes[0]


def _png(plt, fig) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def front_png(
    result: SearchResult, baselines: Mapping[str, Sequence[tuple[float, float, float]]] | None = None
) -> bytes:
    """Error vs latency and error vs params; all evaluated candidates in grey, the front coloured.

    ``baselines`` maps a name to (error, latency_ms, params) points drawn for comparison.
    """
    plt, fig, (ax1, ax2) = _figure(2)
    allm = [c.metrics for c in result.candidates]
    fm = [result.candidates[i].metrics for i in result.front]
    err_all = np.array([m["error"] for m in allm]) * 100
    err = np.array([m["error"] for m in fm]) * 100
    lat = np.array([m["latency_ms"] for m in fm])
    par = np.array([m["params"] for m in fm]) / 1e3
    third = "robust_error" if fm and "robust_error" in fm[0] else None
    for ax, xs_all, xs, xlabel, colour, clabel in (
        (
            ax1,
            [m["latency_ms"] for m in allm],
            lat,
            f"latency (ms, {result.latency_source})",
            par,
            "params (k)",
        ),
        (
            ax2,
            [m["params"] / 1e3 for m in allm],
            par,
            "parameters (k)",
            lat,
            f"latency (ms, {result.latency_source})",
        ),
    ):
        if third:
            colour, clabel = np.array([m[third] for m in fm]) * 100, "robust error (%)"
        ax.scatter(xs_all, err_all, s=10, c="#cccccc", label="evaluated", zorder=1)
        sc = ax.scatter(
            xs, err, s=28, c=colour, cmap="viridis", edgecolors="k", linewidths=0.4, label="front", zorder=2
        )
        fig.colorbar(sc, ax=ax, label=clabel)
        for name, idx in result.picks.items():
            row = result.front.index(idx)
            c, marker = PICK_STYLE[name]
            ax.scatter(
                [xs[row]],
                [err[row]],
                s=160,
                marker=marker,
                facecolors="none",
                edgecolors=c,
                linewidths=2,
                label=name,
                zorder=3,
            )
        for bname, pts in (baselines or {}).items():
            if pts:
                b = np.array(pts)
                bx = b[:, 1] if ax is ax1 else b[:, 2] / 1e3
                ax.plot(bx, b[:, 0] * 100, marker="x", linestyle="--", linewidth=1, label=bname, zorder=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("top-1 error (%)")
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8, loc="upper right")
    ax1.set_title("error vs latency")
    ax2.set_title("error vs parameters")
    return _png(plt, fig)


def history_png(history: Sequence[Mapping[str, float]]) -> bytes:
    """Hypervolume (error x normalised latency) and evaluations per generation."""
    plt, fig, (ax,) = _figure(1, width=6.0, height=3.4)
    gens = [h["generation"] for h in history]
    ax.plot(gens, [h["hypervolume"] for h in history], marker="o", color="#d62728")
    ax.set_xlabel("generation")
    ax.set_ylabel("hypervolume", color="#d62728")
    ax2 = ax.twinx()
    ax2.bar(gens, [h["n_evals"] for h in history], alpha=0.2, color="#1f77b4")
    ax2.set_ylabel("evaluations (cumulative)", color="#1f77b4")
    ax.grid(alpha=0.3)
    ax.set_title("search progress")
    return _png(plt, fig)
