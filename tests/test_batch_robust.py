"""`python -m grader batch` and submission intake on odd class folders: one bad submission costs only itself
(deep nesting, FIFOs, names that are not UTF-8, formula-like names, a folder and a zip of one student)."""
import csv
import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.batch import duplicates, list_submissions, main, student_id, unreadable, write_csv  # noqa: E402
from grader.intake import MAX_FOLDER_DEPTH, SubmissionError, find_student_files, materialize  # noqa: E402
from grader.reference_submissions import write_submission  # noqa: E402

from conftest import run_cli  # noqa: E402

NAMES = ["bc_agent.py", "dagger_agent.py", "dart_agent.py"]


def _nest(top: Path, levels: int) -> Path:
    """``levels`` nested empty folders under ``top`` (made with relative mkdirs: no path limit is hit)."""
    cwd = os.getcwd()
    top.mkdir(parents=True, exist_ok=True)
    os.chdir(top)
    try:
        for _ in range(levels):
            os.mkdir("d")
            os.chdir("d")
    finally:
        os.chdir(cwd)
    return top


def _unnest(top: Path) -> None:
    """Remove the nest of ``d`` folders under ``top`` without recursion (shutil.rmtree, pytest's cleanup too,
    would hit the recursion limit)."""
    cwd, depth = os.getcwd(), 0
    try:
        os.chdir(top)
        while os.path.isdir("d") and not os.path.islink("d"):
            os.chdir("d")
            depth += 1
        for _ in range(depth):
            os.chdir("..")
            for n in os.listdir("d"):
                os.unlink(os.path.join("d", n))
            os.rmdir("d")
    finally:
        os.chdir(cwd)


@pytest.fixture
def nests():
    """``_nest`` through this fixture: every nest is removed after the test."""
    made: list[Path] = []

    def nest(top: Path, levels: int) -> Path:
        made.append(top)
        return _nest(top, levels)

    yield nest
    for top in made:
        _unnest(top)


def test_deep_nesting_is_refused_by_materialize_and_skipped_by_the_batch_check(tmp_path, nests):
    sub = write_submission(tmp_path / "deep", reference=False)
    nests(sub, 1200)
    with pytest.raises(SubmissionError, match=f"more than {MAX_FOLDER_DEPTH} levels"):
        materialize(sub, tmp_path / "m1", NAMES)
    assert unreadable(sub) == ""                              # no RecursionError; the grading says why
    ok = write_submission(tmp_path / "ok", reference=False)
    nests(ok / "x", MAX_FOLDER_DEPTH - 1)                     # 32 levels in all: still searched
    (ok / "x").joinpath(*["d"] * (MAX_FOLDER_DEPTH - 1), "bc_agent.py").write_text("# deep copy\n")
    out = materialize(ok, tmp_path / "m2", NAMES)
    assert sorted(p.name for p in out.rglob("*.py")) == sorted(NAMES)
    assert find_student_files(out, NAMES)["bc_agent.py"] == out / "learning" / "bc_agent.py"


def test_fifos_links_and_stray_files_are_not_submissions(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "bob.zip").write_bytes(b"PK")
    os.mkfifo(tmp_path / "mallory.zip")
    os.symlink(tmp_path / "alice", tmp_path / "eve")
    (tmp_path / "README.txt").write_text("x")
    subs, skipped = list_submissions(tmp_path)
    assert [p.name for p in subs] == ["alice", "bob.zip"]
    assert skipped == ["eve: error: a symbolic link, not a folder or a regular .zip file; not graded",
                       "mallory.zip: error: a FIFO, not a folder or a regular .zip file; not graded"]
    assert unreadable(tmp_path / "mallory.zip").startswith("a FIFO")     # returns at once: never opened


def test_folder_and_zip_of_one_student_stop_the_batch_before_grading(tmp_path, capsys):
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice.zip").write_bytes(b"PK")
    (subs / "bob").mkdir()
    assert duplicates(list_submissions(subs)[0]) == ["alice and alice.zip are both the submission of 'alice' "
                                                     "(results alice.json)"]
    assert main([str(subs), "--pool", "threads", "--csv", str(tmp_path / "g.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: alice and alice.zip") and "nothing was graded" in err[0]
    assert not (tmp_path / "g.csv").exists() and not list((tmp_path / "results").glob("*.json"))


def test_csv_escapes_formulas_and_writes_any_file_name(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    bad = os.fsdecode(b"bad\xff\xfename")
    names = ["=cmd|calc!A1,x", bad, "alice", "@sum", "-2+3", "+x", "\tt", "\rr"]
    for n in names:
        (res / f"{n}.json").write_text(json.dumps({"score": 5, "tests": [{"name": "=HYPERLINK(1)", "score": 5}],
                                                   "output": ""}))
    assert write_csv(tmp_path / "g.csv", [tmp_path / n for n in names], res) == len(names)
    rows = list(csv.reader(open(tmp_path / "g.csv", encoding="utf-8", newline="")))
    assert rows[0] == ["student", "total", "'=HYPERLINK(1)", "note"]
    assert [r[0] for r in rows[1:]] == ["'=cmd|calc!A1,x", "bad\\xff\\xfename", "alice", "'@sum", "'-2+3", "'+x",
                                        "'\tt", "'\rr"]
    assert all(r[1] == "5" for r in rows[1:])


def test_batch_grades_the_good_ones_beside_odd_entries(tmp_path, nests):
    """One grading run: alice (reference), a deep nest, a formula name, a non-UTF-8 name and a FIFO."""
    subs = tmp_path / "subs"
    write_submission(subs / "alice")
    nests(write_submission(subs / "deep"), 1200)
    write_submission(subs / "=cmd|calc!A1,x", reference=False)
    bad = os.fsdecode(b"bad\xff\xfename")
    write_submission(subs / bad, reference=False)
    os.mkfifo(subs / "mallory.zip")
    args = ["-m", "grader", "batch", str(subs), "--pool", "threads", "--jobs", "2", "--csv", str(tmp_path / "g.csv"),
            "--", "--no-performance", "--no-hidden", "--only", "bc_loss"]
    p = run_cli(*args, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "mallory.zip: error: a FIFO" in p.stderr and "RecursionError" not in p.stdout + p.stderr
    rows = {r["student"]: r for r in csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8"))}
    assert set(rows) == {"alice", "deep", "'=cmd|calc!A1,x", "bad\\xff\\xfename"}
    assert float(rows["alice"]["total"]) > 0 and float(rows["deep"]["total"]) == 0
    assert f"more than {MAX_FOLDER_DEPTH} levels" in rows["deep"]["note"]
    assert (tmp_path / "g_report.md").exists()
    assert student_id(subs / bad) == bad and (tmp_path / "results" / f"{bad}.json").exists()


def test_a_batch_of_assignment_2(tmp_path, capsys):
    """--assignment a2 reaches every grading (and chooses the files a Dask worker is sent); given after the -- it is one
    error line, since the batch needs it itself."""
    import io
    import zipfile

    from grader.distributed import pack_submission

    subs = tmp_path / "subs"
    write_submission(subs / "alice", assignment="a2")
    write_submission(subs / "bob", reference=False, scope="core", assignment="a2")
    with zipfile.ZipFile(io.BytesIO(pack_submission(subs / "alice", "a2"))) as z:
        assert sorted(z.namelist()) == ["learning/cem_agent.py", "learning/pg_agent.py"]
    assert main([str(subs), "--pool", "threads", "--", "--assignment", "a2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: give --assignment before the --")
    args = ["-m", "grader", "batch", str(subs), "--assignment", "a2", "--pool", "threads", "--jobs", "2", "--csv",
            str(tmp_path / "g.csv"), "--", "--no-performance", "--no-hidden", "--only", "pg_rtg"]
    p = run_cli(*args, timeout=600)
    assert p.returncode == 0, p.stderr
    rows = {r["student"]: r for r in csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8"))}
    assert float(rows["alice"]["total"]) == 10 and float(rows["bob"]["total"]) == 0     # both parts of pg_rtg
    assert any(k.startswith("PG reward-to-go") for k in rows["alice"])
