"""python -m grader report and the class report a batch writes (fake results: no grading, fast)."""
import json

from grader.grade import error_results, write_json_atomic  # noqa: E402
from grader.report import histogram, load_results, normalize, summarize  # noqa: E402

from conftest import run_cli  # noqa: E402

LOSS = "BC loss (public variant, hopper, batch 32)"
AGG = "DAgger aggregation (public variant, hopper)"
PERF = "BC performance (cheetah)"


def result(loss: tuple[float, str], agg: tuple[float, str], perf: tuple[float, str]) -> dict:
    """A results.json as the grader writes it (Structure + a unit check worth 15, one worth 10, a 10-point ramp)."""
    tests = [{"name": "Structure: files present, importable, TODO methods defined", "score": 0, "max_score": 0,
              "status": "passed", "output": "all student files found and importable"}]
    for name, top, (score, out) in ((LOSS, 15, loss), (AGG, 10, agg), (PERF, 10, perf)):
        tests.append({"name": name, "score": score, "max_score": top,
                      "status": "passed" if score >= top else "failed", "output": out})
    total = sum(t["score"] for t in tests)
    return {"score": total, "output": f"Autograded {total:.1f} / 35.0.", "tests": tests}


def class_results(folder):
    """Five students: two correct, two with the same loss mistake at different values, one grading failure."""
    ok_loss, ok_agg = (15, "loss matches"), (10, "dataset aggregated correctly")
    ramp = "over 20 episodes (0 points at ≤ 900, full at ≥ 3800)"
    rows = {
        "alice": result(ok_loss, ok_agg, (10, f"mean return 4010.2 {ramp}")),
        "bob": result((0, "loss 0.00000 differs from the mean negative log-likelihood 6.37296"), ok_agg,
                      (4.5, f"mean return 2300.7 {ramp}")),
        "carol": result((0, "loss 3.51234 differs from the mean negative log-likelihood 6.37296"),
                        (0, "aggregate returns the dataset unchanged (the placeholder): append the new pairs"),
                        (0, f"mean return 310.0 {ramp}")),
        "dave": result(ok_loss, ok_agg, (10, f"mean return 3999.9 {ramp}")),
    }
    for sid, data in rows.items():
        write_json_atomic(data, folder / f"{sid}.json")
    write_json_atomic(error_results("the zip erin.zip could not be unpacked (BadZipFile)."), folder / "erin.json")
    (folder / ".results_tmp123.json").write_text("{half written")          # a temporary file: ignored
    return rows


def test_normalize_groups_messages_that_differ_only_in_numbers():
    a = normalize("loss 0.00000 differs from the mean negative log-likelihood 6.37296")
    b = normalize("loss  -3.5e-2 differs from the mean negative log-likelihood 12")
    assert a == b == "loss # differs from the mean negative log-likelihood #"
    assert normalize("learning/bc_agent.py: L2 loss, 1,000 rows") == "learning/bc_agent.py: L2 loss, # rows"
    assert len(normalize("x" * 500)) == 200


def test_summary_counts_pass_rates_and_frequent_mistakes(tmp_path):
    class_results(tmp_path)
    results = load_results(tmp_path)
    assert sorted(results) == ["alice", "bob", "carol", "dave", "erin"]
    s = summarize(results)
    assert s.max_score == 35 and sorted(s.scores) == ["alice", "bob", "carol", "dave"]
    assert s.scores["bob"] == 14.5 and list(s.not_graded) == ["erin"]
    by = {c.name: c for c in s.checks}
    assert (by[LOSS].passed, by[LOSS].graded) == (2, 4)
    assert by[LOSS].messages == {"loss # differs from the mean negative log-likelihood #": 2}
    assert (by[AGG].passed, by[PERF].passed) == (3, 2)
    assert by[PERF].points == 24.5
    assert sum(n for *_, n in histogram(list(s.scores.values()), s.max_score)) == 4
    assert histogram([35.0], 35)[-1][2] == 1                   # the maximum falls in the last bar


def test_report_command_writes_markdown_and_png(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    class_results(res)
    p = run_cli("-m", "grader", "report", str(res), "--out", str(tmp_path / "out" / "class"))
    assert p.returncode == 0, p.stderr
    md = (tmp_path / "out" / "class.md").read_text()
    png = (tmp_path / "out" / "class.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "4 submissions graded" in md and "of 35 points" in md and "![" in md and "(class.png)" in md
    assert f"| {LOSS} | 15 | 2/4 (50%) | 7.50 | 4 |" in md
    assert f"| {AGG} | 10 | 3/4 (75%) |" in md
    assert "- 2× `loss # differs from the mean negative log-likelihood #`" in md
    assert "1× `aggregate returns the dataset unchanged (the placeholder): append the new pairs`" in md
    assert md.index("## Most frequent feedback") < md.index("### " + LOSS)
    assert "erin: Grader error: the zip erin.zip could not be unpacked" in md
    hist_rows = [ln for ln in md.splitlines() if ln.startswith("| [")]
    assert len(hist_rows) == 15 and sum(int(r.split("|")[2]) for r in hist_rows) == 4
    again = run_cli("-m", "grader", "report", str(res), "--out", str(tmp_path / "out" / "class"))
    assert again.returncode == 0 and (tmp_path / "out" / "class.md").read_text() == md   # same results, same report


def test_a_folder_without_results_is_one_error_line(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no results here")
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        p = run_cli("-m", "grader", "report", str(folder), "--out", str(tmp_path / "r"))
        assert p.returncode == 2, p.stdout + p.stderr
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and str(folder) in lines[0], p.stderr
    assert not (tmp_path / "r.md").exists()


def test_batch_writes_the_report_beside_its_csv(tmp_path):
    """A batch with everything already graded: CSV and report, nothing graded again."""
    subs, res = tmp_path / "subs", tmp_path / "res"
    for sid in ("alice", "bob", "carol", "dave"):
        (subs / sid).mkdir(parents=True)
    res.mkdir()
    rows = class_results(res)
    (res / "erin.json").unlink()                     # not in this batch: left out of its report
    (res / "zed.json").write_text(json.dumps(rows["alice"]))   # results of a student not in SUBMISSIONS/ either
    p = run_cli("-m", "grader", "batch", str(subs), "--results_dir", str(res), "--csv", str(tmp_path / "g.csv"))
    assert p.returncode == 0, p.stderr
    assert "4 already graded, 0 to grade" in p.stdout
    md = (tmp_path / "g_report.md").read_text()
    assert (tmp_path / "g_report.png").is_file() and "4 submissions graded" in md
