"""tools/benchmark_a1.py: the table it writes into the handout, and its cell keys (instructor-only: not released)."""
from pathlib import Path

import pytest

from tools import benchmark_a1


def test_table_replaces_only_the_marked_part_of_each_doc(tmp_path):
    for doc in benchmark_a1.DOCS:   # the shipped docs carry the markers once
        text = doc.read_text(encoding="utf-8")
        assert text.count(benchmark_a1.MARK_BEGIN) == 1 and text.count(benchmark_a1.MARK_END) == 1, doc
    p = tmp_path / "doc.md"
    p.write_text(f"intro\n\n{benchmark_a1.MARK_BEGIN}\n| old |\n{benchmark_a1.MARK_END}\n\noutro\n")
    results = [{"env": "hopper", "variant": "DAgger", "seed": s, "return": r, "samples": 20000}
               for s, r in enumerate((3000.0, 3200.0, 3400.0))]
    table = benchmark_a1.results_table(results, ["hopper"], ["DAgger"])
    benchmark_a1.replace_marked_table(p, table)
    text = p.read_text()
    assert text.startswith("intro\n\n") and text.endswith("\n\noutro\n") and "| old |" not in text
    assert "3200 ± 163" in text and "n=3, 20k samples" in text
    p.write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        benchmark_a1.replace_marked_table(p, table)


def test_cell_key_follows_what_determines_the_cell():
    key = benchmark_a1.cell_key("hopper", "DAgger", 0, 50)
    assert key == benchmark_a1.cell_key("hopper", "DAgger", 0, 50)
    assert len({key, benchmark_a1.cell_key("hopper", "DAgger", 1, 50), benchmark_a1.cell_key("hopper", "DAgger", 0, 10),
                benchmark_a1.cell_key("walker", "DAgger", 0, 50),
                benchmark_a1.cell_key("hopper", "BC (5 demos)", 0, 50)}) == 5
    assert (Path(benchmark_a1.cell_path("out", "hopper", "BC (5 demos)", 2, key)).name
            == f"hopper_bc_5_demos_seed2_{key}.json")


def test_updating_the_docs_for_some_tasks_keeps_the_other_rows(tmp_path):
    def table(envs, ret, variants=("DAgger", "Noise injection")):
        results = [{"env": e, "variant": v, "seed": 0, "return": ret, "samples": 20000} for e in envs for v in variants]
        return benchmark_a1.results_table(results, list(envs), list(variants))

    p = tmp_path / "doc.md"
    p.write_text(f"intro\n{benchmark_a1.MARK_BEGIN}\n{table(['cheetah', 'walker', 'hopper'], 1000.0)}\n"
                 f"{benchmark_a1.MARK_END}\noutro\n")
    benchmark_a1.replace_marked_table(p, table(["walker", "ant"], 2000.0), merge=True)
    rows = [ln for ln in p.read_text().splitlines() if ln.startswith("| ") and not ln.startswith("| task")]
    assert [r.split("|")[1].strip() for r in rows] == ["cheetah", "walker", "hopper", "ant"]   # in place, new last
    assert ["2000 ± 0" in r for r in rows] == [False, True, False, True]
    assert p.read_text().startswith("intro\n") and p.read_text().endswith("\noutro\n")
    with pytest.raises(ValueError, match="other columns"):
        benchmark_a1.replace_marked_table(p, table(["walker"], 3000.0, variants=("DAgger",)), merge=True)


@pytest.mark.parametrize("args, message", [
    (["--envs", "walkr"], "error: --envs: unknown task walkr"),
    (["--variants", "DAgger", "--update_docs"], "error: --update_docs writes whole rows"),
])
def test_bad_arguments_are_one_error_line(args, message, tmp_path):
    from conftest import run_cli

    r = run_cli("tools/benchmark_a1.py", *args, "--out_dir", str(tmp_path), timeout=120)
    assert r.returncode == 2 and r.stderr.startswith(message), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not any(tmp_path.iterdir())


def test_the_docs_tables_were_measured_with_the_shipped_experts():
    from learning.imitation import expert_reference

    for doc in benchmark_a1.DOCS:
        table = doc.read_text(encoding="utf-8").split(benchmark_a1.MARK_BEGIN)[1].split(benchmark_a1.MARK_END)[0]
        rows = [ln.split("|") for ln in table.strip().splitlines()[2:]]
        assert rows, f"{doc}: the benchmark table has no rows"
        for row in rows:
            task, expert = row[1].strip(), row[2].strip()
            assert expert == f"{expert_reference(task):.0f}", (
                f"{doc}: the {task} row was measured with another expert; "
                f"run: python tools/benchmark_a1.py --envs {task} --update_docs")
            cells = [c.strip() for c in row[3:-1]]
            assert cells and all("n=3," in c for c in cells), (
                f"{doc}: the {task} row has cells with fewer than the 3 training seeds the handout promises; "
                f"run: python tools/benchmark_a1.py --envs {task} --update_docs")
        assert sorted(r[1].strip() for r in rows) == sorted(["cheetah", "walker", "hopper", "ant"]), doc


def test_assignment_2s_table_keeps_the_rows_not_run_again_with_the_command_that_measured_them():
    from tools.doc_tables import merge_measured_block

    head = "| agent | task | final |\n|---|---|---|\n"
    full = merge_measured_block("", head + "| pg | walker | 1 |\n| pg | hopper | 2 |\n| cem | cheetah | 3 |\n",
                                "bench --all", "2026-01-01", key_columns=2)
    assert full.startswith("Measured with `bench --all` (2026-01-01).\n\n")
    part = merge_measured_block(full, head + "| pg | hopper | 20 |\n", "bench --variants pg-hopper", "2026-02-02",
                                key_columns=2)
    assert "| pg | walker | 1 |\n| pg | hopper | 20 |\n| cem | cheetah | 3 |" in part       # in place, others kept
    assert ("- `bench --all` (2026-01-01): every row\n- `bench --variants pg-hopper` (2026-02-02): pg hopper\n"
            in part)
    again = merge_measured_block(part, head + "| cem | cheetah | 30 |\n| pg | walker | 10 |\n", "bench --two",
                                 "2026-03-03", key_columns=2)
    assert "- `bench --all`" not in again        # every row it measured was measured again since
    assert ("- `bench --variants pg-hopper` (2026-02-02): pg hopper\n"
            "- `bench --two` (2026-03-03): cem cheetah, pg walker") in again
    everything = merge_measured_block(again, head + "| pg | walker | 4 |\n| pg | hopper | 5 |\n| cem | cheetah | 6 |\n",
                                      "bench --all", "2026-04-04", key_columns=2)
    assert everything.startswith("Measured with `bench --all` (2026-04-04).\n\n") and "- `" not in everything
