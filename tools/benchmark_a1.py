#!/usr/bin/env python
"""Benchmark the reference solutions: expert, BC with 1/5/25 demos, DAgger and noise injection.

Each variant is trained with the reference TODO code on ``--seeds`` training seeds, with the
a1/ configs (fixed sample budgets), and evaluated with the deterministic action over
``--eval_episodes`` held-out episodes. Prints a Markdown table (returns and % of expert) and
writes it to ``--out``.

    python tools/benchmark_a1.py                          # all tasks, 3 seeds, 50 episodes
    python tools/benchmark_a1.py --envs cheetah --seeds 1 --eval_episodes 10 --jobs 2

Each finished cell (task, variant, seed) is stored in ``<out_dir>/cells/`` under a key made of everything that
determines it (the expert file, the demos, the a1/ config, the reference TODO code, the seed and the number of
episodes), so an interrupted benchmark continues where it stopped and a cell is recomputed only when one of
those changed (``--recompute`` recomputes all).
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tools.doc_tables import merge_table_rows

ROOT = Path(__file__).resolve().parent.parent

VARIANTS = {  # name → (agent, config overrides)
    "BC (1 demo)": ("bc", {"demo_episodes": 1}),
    "BC (5 demos)": ("bc", {"demo_episodes": 5}),
    "BC (25 demos)": ("bc", {"demo_episodes": 25}),
    "DAgger": ("dagger", {}),
    "Noise injection": ("dart", {}),
}


def _thousands(n: int) -> str:
    """1000 → '1k', 24438 → '24.4k' (a demo set whose episodes fell has a sample count off the round figure)."""
    return f"{n / 1000:g}k" if n % 1000 == 0 else f"{n / 1000:.1f}k"


def run_one(job: tuple[str, str, int, int, str]) -> dict:
    """Train one reference agent in this (child) process and evaluate it; returns plain data."""
    env_name, variant, seed, episodes, out_root = job
    import torch

    torch.set_num_threads(1)
    from envs.builder import resolve_env_config
    from learning.agents import build_agent

    agent, overrides = VARIANTS[variant]
    # per-iteration log evaluations are not needed for the table: 1 episode each keeps the runs fast
    settings = {**overrides, "seed": seed, "final_eval_episodes": episodes, "eval_episodes": 1}
    tag = (variant.split(" (")[0].lower().replace(" ", "_")
           + ("_" + str(overrides["demo_episodes"]) if overrides else ""))
    out = Path(out_root) / f"{env_name}_{tag}_seed{seed}"
    t0 = time.time()
    a = build_agent(agent, resolve_env_config(env_name), settings, out_dir=out, solution=True, quiet=True)
    res = a.run(overwrite=True)  # final evaluation: `episodes` held-out episodes (purpose "test"), deterministic action
    return {"env": env_name, "variant": variant, "seed": seed, "return": res.mean, "samples": len(a.dataset),
            "env_steps": a.env_steps, "seconds": time.time() - t0, "log": str(out / "log.txt")}


def cell_key(env_name: str, variant: str, seed: int, episodes: int) -> str:
    """A digest of everything that determines one cell's result (files by content, not by date)."""
    from grader.solution import SOLUTION_METHODS
    from learning.expert import expert_model_path, load_expert_config

    agent, overrides = VARIANTS[variant]
    h = hashlib.sha256(json.dumps([env_name, variant, overrides, seed, episodes]).encode())
    for path in (expert_model_path(load_expert_config(env_name)[0]), ROOT / "data" / "demos" / f"{env_name}.npz",
                 ROOT / "a1" / f"{agent}_{env_name}.yaml", ROOT / "data" / "envs" / f"{env_name}.yaml"):
        h.update(path.read_bytes() if path.is_file() else b"absent")
    for methods in SOLUTION_METHODS.values():
        for fn in methods.values():
            h.update(inspect.getsource(fn).encode())
    return h.hexdigest()[:16]


def cell_path(out_dir: str, env_name: str, variant: str, seed: int, key: str) -> Path:
    tag = variant.lower().replace(" ", "_").replace("(", "").replace(")", "")
    return Path(out_dir) / "cells" / f"{env_name}_{tag}_seed{seed}_{key}.json"


DOCS = (ROOT / "a1" / "benchmark.md", ROOT / "a1" / "README.md")
MARK_BEGIN, MARK_END = "<!-- benchmark-table -->", "<!-- /benchmark-table -->"


def results_table(results: list[dict], envs: list[str], variants: list[str]) -> str:
    """Markdown table: per task and variant, mean ± std over seeds, % of the expert, seeds and samples."""
    import numpy as np

    from learning.imitation import expert_reference

    lines = ["| task | expert | " + " | ".join(variants) + " |", "|---|---|" + "---|" * len(variants)]
    for e in envs:
        exp = expert_reference(e)
        cells = []
        for v in variants:
            rs = [r for r in results if r["env"] == e and r["variant"] == v]
            m, s = float(np.mean([r["return"] for r in rs])), float(np.std([r["return"] for r in rs]))
            pct = f" ({100 * m / exp:.0f}%)" if exp else ""
            cells.append(f"{m:.0f} ± {s:.0f}{pct}<br>n={len(rs)}, {_thousands(rs[0]['samples'])} samples")
        lines.append(f"| {e} | {f'{exp:.0f}' if exp else '?'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replace_marked_table(doc: Path, table: str, merge: bool = False) -> None:
    """Replace the text between the benchmark-table markers of ``doc`` with ``table`` (``merge``: only the rows
    of ``table``'s tasks, see :func:`tools.doc_tables.merge_table_rows`)."""
    text = doc.read_text(encoding="utf-8")
    if text.count(MARK_BEGIN) != 1 or text.count(MARK_END) != 1:
        raise ValueError(f"{doc} must hold the markers {MARK_BEGIN} and {MARK_END} once each around its table.")
    head, rest = text.split(MARK_BEGIN)
    current, tail = rest.split(MARK_END)
    if merge:
        table = merge_table_rows(current, table)
    doc.write_text(f"{head}{MARK_BEGIN}\n{table}\n{MARK_END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", nargs="+", default=["cheetah", "walker", "hopper", "ant"])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1 (default 3)")
    p.add_argument("--eval_episodes", type=int, default=50)
    p.add_argument("--jobs", type=int, default=2, help="parallel child processes (default 2)")
    p.add_argument("--out_dir", default=str(ROOT / "output" / "benchmark"))
    p.add_argument("--out", default=str(ROOT / "output" / "benchmark" / "benchmark_a1.md"))
    p.add_argument("--recompute", action="store_true", help="ignore the cells stored in <out_dir>/cells/")
    p.add_argument("--update_docs", action="store_true",
                   help="also write the table into a1/benchmark.md and a1/README.md (between their "
                        "benchmark-table markers): the rows of the --envs tasks; the other tasks' rows stay")
    args = p.parse_args(argv)

    if args.update_docs and args.variants != list(VARIANTS):
        raise ValueError("--update_docs writes whole rows: leave --variants out (every variant) to update the docs.")
    from envs.builder import available_envs

    unknown = sorted(set(args.envs) - set(available_envs()))
    if unknown:
        raise ValueError(f"--envs: unknown task {', '.join(unknown)}; choose from {', '.join(available_envs())}.")
    jobs = [(e, v, s, args.eval_episodes, args.out_dir)
            for e in args.envs for v in args.variants for s in range(args.seeds)]
    results, todo = [], []
    for job in jobs:
        e, v, s = job[:3]
        path = cell_path(args.out_dir, e, v, s, cell_key(e, v, s, args.eval_episodes))
        if path.is_file() and not args.recompute:
            results.append(json.loads(path.read_text()))
        else:
            todo.append((job, path))
    if results:
        print(f"{len(results)} of {len(jobs)} cells stored in {Path(args.out_dir) / 'cells'} are reused "
              "(--recompute to train them again).")
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for (job, path), r in zip(todo, pool.map(run_one, [job for job, _ in todo]), strict=True):
            results.append(r)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(r, indent=1))
            tmp.replace(path)      # a cell is stored whole or not at all
            print(f"[{len(results)}/{len(jobs)}] {r['env']:8s} {r['variant']:16s} seed {r['seed']}: "
                  f"{r['return']:8.1f}  ({r['samples']} samples, {r['seconds']:.0f}s)", flush=True)
    table = results_table(results, args.envs, args.variants)
    print("\n" + table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"Reference solutions, {args.seeds} training seeds, deterministic action, {args.eval_episodes} "
                   "held-out episodes per seed.\n\n" + table + "\n")
    (out.with_suffix(".json")).write_text(json.dumps(results, indent=1))
    print(f"\nWrote {out} ({time.time() - t0:.0f}s)")
    if args.update_docs:
        for doc in DOCS:
            replace_marked_table(doc, table, merge=True)
            print(f"Updated the rows of {', '.join(args.envs)} in the table of {doc}")
    return 0


if __name__ == "__main__":
    from util.cli import run_main

    sys.exit(run_main(main))
