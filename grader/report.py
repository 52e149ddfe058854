"""python -m grader report RESULTS_DIR [--out PREFIX]: what the class got right and wrong, at a glance.

Reads the per-student results (RESULTS_DIR/<student>.json, as written by `python -m grader batch`) and writes
PREFIX.png (a histogram of total scores and each check's full-marks rate) and PREFIX.md (the same numbers as
tables, plus each check's most frequent feedback messages). Numbers are taken out of the messages before they are
counted ("loss 0.12 differs ..." and "loss 3.4 differs ..." are one mistake), so the most common mistakes head each
list. `batch` writes this report beside its CSV at the end of every run. Submissions whose grading failed
("Grader error: ...") are listed apart and left out of the statistics.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?(?:\d+(?:[.,]\d+)*\.?|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_])")
BINS = 15                 # histogram bars between 0 and the maximum score


class ReportError(RuntimeError):
    """No report can be made from this folder (bad input: exit 2)."""


@dataclass
class CheckStats:
    """One check's outcome over the class (``messages``: normalized feedback of the failed attempts → count)."""

    name: str
    max_score: float = 0.0
    graded: int = 0
    passed: int = 0
    points: float = 0.0
    messages: Counter = field(default_factory=Counter)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.graded if self.graded else 0.0


@dataclass
class ClassSummary:
    """Totals (``scores``: student → total score of the graded ones), per-check stats and the failed gradings."""

    scores: dict[str, float]
    max_score: float
    checks: list[CheckStats]
    not_graded: dict[str, str]


def normalize(message: str, limit: int = 200) -> str:
    """Feedback with every number replaced by '#' and whitespace collapsed, so that similar messages group."""
    text = " ".join(NUMBER.sub("#", str(message)).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def load_results(folder: Path, students: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """student → results.json content for every readable <student>.json in ``folder`` (only ``students`` if given;
    hidden temporary files and unreadable or malformed files are skipped)."""
    out: dict[str, dict[str, Any]] = {}
    paths = ([folder / f"{s}.json" for s in students] if students is not None
             else sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")))
    for p in paths:
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("tests", []), list):
            out[os.fsencode(p.stem).decode("utf-8", "backslashreplace")] = data     # any file name prints
    return out


def _is_grader_error(data: dict[str, Any]) -> bool:
    return str(data.get("output", "")).startswith("Grader error")


def _as_float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return 0.0


def summarize(results: dict[str, dict[str, Any]]) -> ClassSummary:
    """Per-check stats in the order the checks first appear; the maximum is the most common sum of max_score."""
    scores: dict[str, float] = {}
    not_graded: dict[str, str] = {}
    checks: dict[str, CheckStats] = {}
    maxima: Counter = Counter()
    for sid, data in results.items():
        if _is_grader_error(data):
            not_graded[sid] = str(data.get("output", ""))
            continue
        tests = [t for t in data.get("tests", []) if isinstance(t, dict) and "name" in t]
        scores[sid] = _as_float(data.get("score", 0))
        maxima[round(sum(_as_float(t.get("max_score", 0)) for t in tests), 3)] += 1
        for t in tests:
            c = checks.setdefault(str(t["name"]), CheckStats(str(t["name"])))
            score, top = _as_float(t.get("score", 0)), _as_float(t.get("max_score", 0))
            ok = t.get("status") == "passed" if "status" in t else score >= top - 1e-9
            c.max_score = max(c.max_score, top)
            c.graded += 1
            c.passed += ok
            c.points += score
            if not ok:
                c.messages[normalize(t.get("output", ""))] += 1
    top_score = max(maxima.items(), key=lambda kv: (kv[1], kv[0]))[0] if maxima else 0.0
    return ClassSummary(scores, float(top_score), list(checks.values()), not_graded)


def histogram(scores: list[float], max_score: float, bins: int = BINS) -> list[tuple[float, float, int]]:
    """(low, high, count) per bar; bars split [0, max_score] evenly, the last one includes max_score."""
    top = max([max_score, *scores, 1e-9])
    width = top / bins
    counts = [0] * bins
    for s in scores:
        counts[min(bins - 1, max(0, int(s / width)))] += 1
    return [(i * width, (i + 1) * width, n) for i, n in enumerate(counts)]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def markdown(summary: ClassSummary, png_name: str, top: int = 3, source: str = "") -> str:
    """The report as Markdown: totals, the histogram's counts, the per-check table and the frequent feedback."""
    vals = sorted(summary.scores.values())
    n = len(vals)
    lines = ["# Class report", ""]
    if n:
        median = vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2
        lines.append(f"{n} submissions graded{f' ({source})' if source else ''}: mean {sum(vals) / n:.1f}, median "
                     f"{median:.1f}, min {vals[0]:.1f}, max {vals[-1]:.1f} of {summary.max_score:g} points; "
                     f"{sum(v >= summary.max_score - 1e-9 for v in vals)} with full marks.")
    if summary.not_graded:
        lines.append(f"{len(summary.not_graded)} could not be graded (listed at the end).")
    lines += ["", f"![total scores and full-marks rate per check]({png_name})", "", "## Total scores", "",
              "| score | students | |", "|---|---:|---|"]
    hist = histogram(vals, summary.max_score)
    peak = max([c for _, _, c in hist] + [1])
    for i, (lo, hi, count) in enumerate(hist):
        bracket = "]" if i == len(hist) - 1 else ")"
        lines.append(f"| [{lo:.4g}, {hi:.4g}{bracket} | {count} | {'█' * round(20 * count / peak)} |")
    lines += ["", "## Checks", "", "Full marks: the share of students with every point of the check.", "",
              "| check | points | full marks | mean points | graded |", "|---|---:|---:|---:|---:|"]
    for c in summary.checks:
        mean = c.points / c.graded if c.graded else 0.0
        lines.append(f"| {_cell(c.name)} | {c.max_score:g} | {c.passed}/{c.graded} ({100 * c.pass_rate:.0f}%) "
                     f"| {mean:.2f} | {c.graded} |")
    lines += ["", "## Most frequent feedback where points were lost", "",
              "Numbers are replaced by # so that the same mistake counts once per student.", ""]
    failing = [c for c in summary.checks if c.messages]
    if not failing:
        lines.append("Every graded student passed every check.")
    for c in failing:
        lost = c.graded - c.passed
        lines += [f"### {c.name}", "", f"{lost} of {c.graded} students lost points:", ""]
        for msg, count in sorted(c.messages.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
            lines.append(f"- {count}× `{_cell(msg) or '(no feedback)'}`")
        if len(c.messages) > top:
            lines.append(f"- … {len(c.messages) - top} other messages")
        lines.append("")
    if summary.not_graded:
        lines += ["## Could not be graded", "", "A new batch run grades these again.", ""]
        lines += [f"- {_cell(sid)}: {_cell(' '.join(msg.split())[:300])}"
                  for sid, msg in sorted(summary.not_graded.items())]
    return "\n".join(lines).rstrip() + "\n"


def plot(summary: ClassSummary, path: Path) -> None:
    """PNG: the histogram of total scores (left) and each check's full-marks rate (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = histogram(list(summary.scores.values()), summary.max_score)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, max(4.5, 0.32 * len(summary.checks) + 1.5)),
                                   gridspec_kw={"width_ratios": [1, 1.4]})
    ax1.bar([lo for lo, _, _ in hist], [c for _, _, c in hist], width=hist[0][1] - hist[0][0], align="edge",
            color="#4C72B0", edgecolor="white")
    ax1.set_xlim(0, hist[-1][1])
    ax1.set_xlabel(f"total score (of {summary.max_score:g})")
    ax1.set_ylabel("students")
    ax1.set_title(f"Total scores ({len(summary.scores)} students)")
    ax1.yaxis.get_major_locator().set_params(integer=True)
    names = [c.name if len(c.name) <= 70 else c.name[:69] + "…" for c in summary.checks]
    rates = [100 * c.pass_rate for c in summary.checks]
    ys = list(range(len(names)))[::-1]
    ax2.barh(ys, rates, color=["#55A868" if r >= 80 else "#DD8452" if r >= 50 else "#C44E52" for r in rates])
    ax2.set_yticks(ys, names, fontsize=8)
    ax2.set_xlim(0, 100)
    ax2.set_xlabel("students with full marks (%)")
    ax2.set_title("Checks")
    for y, r in zip(ys, rates, strict=True):
        ax2.text(min(r + 1, 88), y, f"{r:.0f}%", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results_dir: Path, prefix: Path, students: list[str] | None = None,
                 top: int = 3) -> tuple[Path, Path]:
    """Write PREFIX.md and PREFIX.png from the results in ``results_dir``. Raises ReportError without results."""
    results = load_results(results_dir, students)
    if not results:
        raise ReportError(f"{results_dir} holds no results (<student>.json files written by python -m grader batch)")
    summary = summarize(results)
    md, png = prefix.with_name(prefix.name + ".md"), prefix.with_name(prefix.name + ".png")
    md.parent.mkdir(parents=True, exist_ok=True)
    if summary.scores:
        plot(summary, png)
    else:
        png.unlink(missing_ok=True)
    md.write_text(markdown(summary, png.name, top, source=f"results in {results_dir}"), encoding="utf-8",
                  errors="backslashreplace")
    return md, png


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results_dir",
                   help="folder of <student>.json results (batch's --results_dir, default DIR/../results)")
    p.add_argument("--out", default="class_report", help="writes OUT.md and OUT.png (default ./class_report)")
    p.add_argument("--top", type=int, default=3, help="feedback messages listed per check (default 3)")
    args = p.parse_args(argv)
    folder = Path(args.results_dir)
    if not folder.is_dir():
        print(f"error: {folder} is not a folder of results: give the folder batch wrote (--results_dir, "
              "default DIR/../results)", file=sys.stderr)
        return 2
    if args.top < 1:
        print("error: --top must be >= 1", file=sys.stderr)
        return 2
    try:
        md, png = write_report(folder, Path(args.out), top=args.top)
    except ReportError as e:
        print(f"error: {e}; grade first: python -m grader batch SUBMISSIONS/ --results_dir {folder}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot write the report {args.out}.md/.png ({e.strerror}); choose a writable --out",
              file=sys.stderr)
        return 2
    print(f"Wrote {md}" + (f" and {png}" if png.exists() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
