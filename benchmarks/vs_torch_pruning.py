"""Head to head with Torch-Pruning at equal measured latency (CIFAR ResNet-56, target host-cpu; issue 16).

Method, per seed (the seed drives the data split, the search and the fine-tuning):

1. A host-cpu latency table is measured in a fresh ``EDGEPRUNE_HOME`` (once, before the first seed).
2. edgeprune: a flat NSGA-III search (error, params, latency; ``--population`` × ``--generations``).
3. Torch-Pruning: its global pruner with its defaults (``MetaPruner``, ``GroupMagnitudeImportance(p=2)``,
   ``global_pruning=True``, the final linear layer ignored, ``round_to`` = the target's channel
   multiple, 16 (``--round-to 0``: ``None``, Torch-Pruning's own default), and edgeprune's ``EmbedShortcutPruner`` for the option-A shortcut) applied to a fresh
   copy of the pretrained network at every pruning ratio r of a grid (``--tp-step``). With
   ``round_to`` a group that would lose any channel drops to the multiple below and a group that would
   reach zero is skipped, so latency is not monotonic in r (a bisection on r can step over the
   networks it needs); the grid finds every network the pruner produces, and duplicates are measured once.
4. Every edgeprune front member and every distinct Torch-Pruning network is exported to ONNX and timed
   with ONNX Runtime (1 intra-op thread, batch 1) in ONE interleaved run together with the unpruned
   network; a speedup is unpruned ms / network ms within that run.
5. For each target speedup s: edgeprune's pick is the front member with the lowest approximate error
   among those with measured speedup ≥ s; Torch-Pruning's network is the one whose measured latency is
   closest to the pick's within ±3 %, else the closest at or below it (faster), else the closest.
   The matched pairs (and the knee) are timed again together with the unpruned network (``confirm``).
6. Fine-tuning, identical for all: ``edgeprune.train.fine_tune`` (SGD, cosine, augmentation,
   ``--epochs``, lr 0.01, batch 128, the seed) on the same training split, 2 torch threads, then
   top-1 on the 10k test set. edgeprune's picks (and knee) first get ``recalibrate_changed_bn`` on the
   calibration split, as edgeprune's finalize does; Torch-Pruning's networks go straight to fine-tuning
   (its own recipe). The unpruned network is fine-tuned the same way (the reference).

    nice -n 19 python benchmarks/vs_torch_pruning.py --seeds 0,1   # writes benchmarks/results/vs_torch_pruning.json
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch_pruning as tp
from bench_common import command_line, time_side_by_side, write_result
from torch import nn

from edgeprune.config import DataConfig, ModelConfig
from edgeprune.data import load_data
from edgeprune.export.onnx_export import export_onnx
from edgeprune.graph import apply_plan
from edgeprune.graph.shortcut import EmbedShortcutPruner
from edgeprune.latency import load_profile
from edgeprune.latency.profile_run import profile_model
from edgeprune.models import build_model
from edgeprune.models.cifar_resnet import EmbedShortcut
from edgeprune.search.config import SearchConfig
from edgeprune.search.evaluator import Evaluator, EvaluatorSpec
from edgeprune.search.run import run_search
from edgeprune.train import evaluate_accuracy, fine_tune, recalibrate_changed_bn

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared" / "data").resolve()
TOLERANCE = 0.03


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def tp_prune(base: nn.Module, example: torch.Tensor, ratio: float, round_to: int | None) -> nn.Module:
    """Torch-Pruning's global magnitude pruner, its defaults, on a fresh copy of ``base``."""
    net = copy.deepcopy(base).eval()
    pruner = tp.pruner.MetaPruner(
        net, example, importance=tp.importance.GroupMagnitudeImportance(p=2), global_pruning=True,
        pruning_ratio=ratio, round_to=round_to, ignored_layers=[net.linear],
        customized_pruners={EmbedShortcut: EmbedShortcutPruner()},
    )  # fmt: skip
    pruner.step()
    with torch.no_grad():
        out = net(example)
    if tuple(out.shape) != (1, 10):
        raise RuntimeError(f"Torch-Pruning at r={ratio} gives an output of shape {tuple(out.shape)}")
    return net


def tp_grid(base: nn.Module, example: torch.Tensor, step: float, round_to: int | None) -> list[dict]:
    """The distinct networks Torch-Pruning produces over r = step, 2 step, ... < 1 (smallest r kept)."""
    seen: dict[tuple, dict] = {}
    for r in np.arange(step, 0.95 + 1e-9, step):
        net = tp_prune(base, example, float(round(r, 4)), round_to)
        key = tuple(tuple(t.shape) for t in net.state_dict().values())
        if key not in seen:
            widths = [m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)]
            seen[key] = {"ratio": float(round(r, 4)), "net": net, "params": n_params(net), "widths": widths}
    return list(seen.values())


def measure(nets: list[nn.Module], example: torch.Tensor, work: Path, passes: int, reps: int) -> list[float]:
    """ONNX Runtime (1 thread) ms of every network, all timed side by side in one interleaved run."""
    work.mkdir(parents=True, exist_ok=True)
    paths = [export_onnx(n, example, work / f"n{i}.onnx").path for i, n in enumerate(nets)]
    return time_side_by_side(paths, example.numpy(), passes=passes, reps=reps, warmup=10)


def match(target_ms: float, cands: list[dict]) -> tuple[dict, str]:
    """Torch-Pruning's network closest to ``target_ms`` within ±3 %, else the closest at or below, else closest."""
    dist = [abs(c["ms"] / target_ms - 1.0) for c in cands]
    within = [i for i, d in enumerate(dist) if d <= TOLERANCE]
    if within:
        return cands[min(within, key=lambda i: dist[i])], "within_3pct"
    below = [i for i, c in enumerate(cands) if c["ms"] <= target_ms]
    if below:
        return cands[min(below, key=lambda i: dist[i])], "closest_below"
    return cands[int(np.argmin(dist))], "closest_above"


def run_seed(
    seed: int, args: argparse.Namespace, model_cfg: ModelConfig, grid: list[dict], work: Path
) -> dict:
    times: dict[str, float] = {}
    extra = (str(SHARED / "cifar10-extra" / "train_40k.npz"),) if args.extra_train else ()
    data_cfg = DataConfig(source=str(SHARED / "cifar10"), extra_train=extra, seed=seed)
    cfg = SearchConfig(population=args.population, generations=args.generations, seed=seed)
    spec = EvaluatorSpec(model_cfg, data_cfg, "host-cpu", cfg)
    t0 = time.time()
    evaluator = Evaluator(spec)
    result = run_search(spec, work / f"search-s{seed}", evaluator=evaluator)
    times["search"] = time.time() - t0
    base, example = evaluator.model.eval(), evaluator.example
    front = result.front_candidates()
    print(f"[seed {seed}] search: {result.n_evals} evaluations, front {len(front)} ({times['search']:.0f} s)", flush=True)  # fmt: skip

    t0 = time.time()
    ep_nets = [apply_plan(base, c.plan, example) for c in front]
    ms = measure([base, *ep_nets, *(g["net"] for g in grid)], example, work / f"m-s{seed}", 5, args.reps)
    ref_ms, ep_ms, tp_ms = ms[0], ms[1 : 1 + len(front)], ms[1 + len(front) :]
    tps = [{**g, "ms": m} for g, m in zip(grid, tp_ms, strict=True)]
    times["measure"] = time.time() - t0
    print(f"[seed {seed}] measured {len(ms)} networks, unpruned {ref_ms:.3f} ms ({times['measure']:.0f} s)", flush=True)  # fmt: skip

    rows, jobs = [], {}  # jobs: key -> (kind, network) to fine-tune
    for s in args.speedups:
        ok = [i for i, m in enumerate(ep_ms) if ref_ms / m >= s]
        if not ok:
            rows.append({"target_speedup": s, "edgeprune": None, "torch_pruning": None})
            print(f"[seed {seed}] no front member reaches {s}x", flush=True)
            continue
        i = min(ok, key=lambda j: (front[j].metrics["error"], ep_ms[j]))
        t, how = match(ep_ms[i], tps)
        rows.append({"target_speedup": s, "edgeprune": {
            "key": front[i].plan.key(), "plan": front[i].plan.to_dict(), "approx_error": front[i].metrics["error"],
            "params": int(front[i].metrics["params"]), "ms": ep_ms[i], "measured_speedup": ref_ms / ep_ms[i]},
            "torch_pruning": {"key": f"tp{t['ratio']}", "ratio": t["ratio"], "params": t["params"],
            "widths": t["widths"], "ms": t["ms"], "measured_speedup": ref_ms / t["ms"],
            "latency_vs_edgeprune": t["ms"] / ep_ms[i], "match": how}})  # fmt: skip
        jobs[front[i].plan.key()] = ("ep", ep_nets[i])
        jobs[f"tp{t['ratio']}"] = ("tp", t["net"])
    k = result.picks["knee"]
    knee = result.candidates[k]
    ki = next((j for j, c in enumerate(front) if c.plan.key() == knee.plan.key()), None)
    knee_net = ep_nets[ki] if ki is not None else apply_plan(base, knee.plan, example)
    jobs[knee.plan.key()] = ("ep", knee_net)

    t0 = time.time()
    pairs = [n for r in rows if r["edgeprune"] for n in (jobs[r["edgeprune"]["key"]][1], jobs[r["torch_pruning"]["key"]][1])]  # fmt: skip
    conf = measure([base, *pairs, knee_net], example, work / f"c-s{seed}", 5, 100)
    it = iter(conf[1:-1])
    for r in rows:
        if r["edgeprune"]:
            r["edgeprune"]["confirm_speedup"] = conf[0] / next(it)
            r["torch_pruning"]["confirm_speedup"] = conf[0] / next(it)
    times["confirm"] = time.time() - t0

    data = load_data(data_cfg)
    train_x, train_y = data.train.x[: args.limit_train], data.train.y[: args.limit_train]
    acc: dict[str, float] = {}
    ft_s: dict[str, float] = {}
    original = evaluate_accuracy(base, data.test.x, data.test.y)
    for key, (kind, net) in [("unpruned", ("ref", base)), *jobs.items()]:
        t0 = time.time()
        net = copy.deepcopy(net)
        if kind == "ep":
            net = recalibrate_changed_bn(base, net, data.calib.x)
        fine_tune(net, train_x, train_y, epochs=args.epochs, lr=0.01, batch_size=128, seed=seed)
        acc[key] = evaluate_accuracy(net.eval(), data.test.x, data.test.y)
        ft_s[key] = round(time.time() - t0, 1)
        print(
            f"[seed {seed}] fine-tuned {kind} {key[:40]}: test {acc[key]:.2%} ({ft_s[key]:.0f} s)", flush=True
        )
    times["finetune"] = sum(ft_s.values())
    for r in rows:
        if r["edgeprune"]:
            r["edgeprune"]["test_acc"] = acc[r["edgeprune"]["key"]]
            r["torch_pruning"]["test_acc"] = acc[r["torch_pruning"]["key"]]
            r["edgeprune_minus_torch_pruning_points"] = 100 * (r["edgeprune"]["test_acc"] - r["torch_pruning"]["test_acc"])  # fmt: skip
            print(f"[seed {seed}] {r['target_speedup']}x: edgeprune {r['edgeprune']['measured_speedup']:.2f}x "
                  f"{r['edgeprune']['test_acc']:.2%} | Torch-Pruning r={r['torch_pruning']['ratio']} "
                  f"{r['torch_pruning']['measured_speedup']:.2f}x {r['torch_pruning']['test_acc']:.2%} | "
                  f"{r['edgeprune_minus_torch_pruning_points']:+.2f} pt", flush=True)  # fmt: skip
    return {
        "search": {"n_evals": result.n_evals, "front_size": len(front), "latency_source": result.latency_source},
        "unpruned_ms": ref_ms, "test_acc_original_weights": original, "test_acc_unpruned_finetuned": acc["unpruned"],
        "train_images": len(train_x), "targets": rows,
        "knee": {"plan": knee.plan.to_dict(), "approx_error": knee.metrics["error"], "params": int(knee.metrics["params"]),
                 "measured_speedup": ref_ms / ep_ms[ki] if ki is not None else None,
                 "confirm_speedup": conf[0] / conf[-1], "test_acc": acc[knee.plan.key()]},
        "torch_pruning_networks": [{k: v for k, v in t.items() if k not in ("net", "widths")} for t in tps],
        "front": [{"approx_error": c.metrics["error"], "params": int(c.metrics["params"]), "ms": m}
                  for c, m in zip(front, ep_ms, strict=True)],
        "finetune_seconds": ft_s, "seconds": {k: round(v, 1) for k, v in times.items()},
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--generations", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs, every network")
    ap.add_argument("--speedups", default="1.5,2.0,2.5")
    ap.add_argument("--tp-step", type=float, default=0.01, help="grid step of Torch-Pruning's ratio")
    ap.add_argument("--reps", type=int, default=60, help="timed calls per pass in the matching run")
    ap.add_argument(
        "--round-to",
        type=int,
        help="Torch-Pruning's round_to (default: the target's channel multiple; 0: None, its own default)",
    )
    ap.add_argument("--extra-train", action="store_true", help="add cifar10-extra/train_40k.npz (50k pool)")
    ap.add_argument("--limit-train", type=int, help="SMOKE ONLY: fine-tune on the first N training images")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "vs_torch_pruning.json")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    args.speedups = [float(s) for s in args.speedups.split(",")]
    command = command_line(__file__, argparse.Namespace(**{**vars(args), "speedups": ",".join(map(str, args.speedups))}))  # fmt: skip
    torch.set_num_threads(2)
    t_start = time.time()
    model_cfg = ModelConfig(name="resnet56", weights=SHARED / "pretrained" / "resnet56-4bfd9763.th")
    os.environ["EDGEPRUNE_HOME"] = tempfile.mkdtemp(prefix="edgeprune-vstp-home-")  # a new machine
    base = build_model(model_cfg).model.eval()
    work = Path(tempfile.mkdtemp(prefix="edgeprune-vstp-"))
    # import every module now (registries load theirs lazily): the working tree may change under a long run
    SearchConfig(population=args.population, generations=args.generations)
    measure([base], torch.zeros(1, 3, 32, 32), work / "warm", 1, 1)
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "edgeprune"], capture_output=True, text=True
    ).stdout
    profile = load_profile("host-cpu")
    profile_model(profile, base, (3, 32, 32), model_name="resnet56")
    table_s = time.time() - t_start
    print(f"latency table measured ({table_s:.0f} s)", flush=True)
    t0 = time.time()
    round_to = profile.channel_multiple if args.round_to is None else (args.round_to or None)
    grid = tp_grid(base, torch.zeros(1, 3, 32, 32), args.tp_step, round_to)
    grid_s = time.time() - t0
    print(f"Torch-Pruning: {len(grid)} distinct networks over the r grid ({grid_s:.0f} s)", flush=True)
    out = {
        "benchmark": "vs_torch_pruning", "model": "resnet56", "target": "host-cpu",
        "torch_pruning_version": tp.__version__, "edgeprune_commit": commit, "edgeprune_dirty": bool(dirty), "round_to": round_to,
        "data": "cifar10 50k pool (10k + extra 40k)" if args.extra_train else "cifar10 10k train pool + 10k test",
        "args": {k: str(v) for k, v in vars(args).items()}, "command": command, "seeds_requested": seeds, "seeds_done": [],
        "seconds_latency_table": round(table_s, 1), "seconds_torch_pruning_grid": round(grid_s, 1), "per_seed": {},
    }  # fmt: skip
    for seed in seeds:
        out["per_seed"][str(seed)] = run_seed(seed, args, model_cfg, grid, work)
        out["seeds_done"].append(seed)
        out["complete"] = out["seeds_done"] == seeds
        rows = [r for s in out["per_seed"].values() for r in s["targets"] if r["edgeprune"]]
        matched = [r for r in rows if r["torch_pruning"]["match"] != "closest_above"]
        out["n_matched"], out["n_unmatched_torch_pruning_slower"] = len(matched), len(rows) - len(matched)
        out["edgeprune_at_least_as_accurate_at_every_matched_latency"] = all(
            r["edgeprune_minus_torch_pruning_points"] >= 0 for r in matched
        )
        out["seconds"] = round(time.time() - t_start, 1)
        write_result(args.out, out)
        print(f"wrote {args.out} after seed {seed} ({out['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
