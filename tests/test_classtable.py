"""The class table, hand-score merging and feedback files (helpers.course.classtable), from
hand-built grade reports: a full-marks student, a partial one, one whose notebook crashed before
any check ran, and a mix of labs."""

from __future__ import annotations

import copy
import csv

import pytest

from helpers.course.classtable import (
    MAX_ROW,
    PASS_RATE_ROW,
    build_class_table,
    merge_hand_scores,
    write_class_table,
    write_class_tables,
    write_feedback,
)

CHECKS = [  # (id, title, kind, max points)
    ("vanilla_generator", "Generator architecture", "visible", 2.0),
    ("vanilla_losses", "BCE losses", "visible", 2.0),
    ("hidden_batch_of_one", "Generator with a batch of one", "hidden", 1.0),
    ("generate_contract", "generate contract", "contract", 1.0),
]


def _report(student: str, passed: set[str], lab: str = "vanilla", **extra) -> dict:
    checks = [{"id": cid, "title": title, "kind": kind, "max_points": worth,
               "points": worth if cid in passed else 0.0,
               "status": "passed" if cid in passed else "failed",
               "message": "ok" if cid in passed else f"{title}: expected (4, 1, 28, 28), got (4, 784)"}
              for cid, title, kind, worth in CHECKS]
    report = {
        "submission": f"/subs/{student}.ipynb", "student": student, "lab": lab,
        "points": sum(c["points"] for c in checks), "max_points": 6.0, "checks": checks,
        "contract": {"status": "passed" if "generate_contract" in passed else "failed",
                     "items": [{"name": "shape and dtype", "ok": True, "detail": "(5, 28, 28) float32"},
                               {"name": "copies", "ok": "generate_contract" in passed, "detail": "0.4% copies"}]},
        "by_hand": [{"id": "q_mode_collapse", "cell": 17, "title": "Why does the generator collapse?"},
                    {"id": "q_ema", "cell": 23, "title": "What does the EMA change?"}],
        "problems": [],
        "duration_s": 12.5,   # an extra key the table ignores
    }
    report.update(extra)
    return report


def _crashed(student: str) -> dict:
    return {"submission": f"/subs/{student}.ipynb", "student": student, "lab": "vanilla", "points": 0.0,
            "max_points": 6.0, "checks": [],
            "problems": ["the kernel died in cell 4 (os._exit)", "no check ran"]}


@pytest.fixture
def reports() -> list[dict]:
    all_ids = {c[0] for c in CHECKS}
    return [_report("alice", all_ids), _report("bob", {"vanilla_generator", "generate_contract"}), _crashed("carol")]


def _read(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_class_table_rows_columns_totals_and_pass_rates(reports, tmp_path):
    paths = write_class_table(reports, tmp_path / "class.csv")
    assert paths == {"csv": tmp_path / "class.csv", "markdown": tmp_path / "class.md"}
    rows = _read(paths["csv"])
    assert list(rows[0]) == ["student", "lab", "vanilla_generator", "vanilla_losses", "hidden_batch_of_one",
                             "generate_contract", "total", "max", "contract", "problems"]
    assert [r["student"] for r in rows] == [MAX_ROW, "alice", "bob", "carol", PASS_RATE_ROW]
    by = {r["student"]: r for r in rows}
    assert [by[MAX_ROW][c] for c in ("vanilla_generator", "vanilla_losses", "hidden_batch_of_one", "generate_contract", "max")] \
        == ["2", "2", "1", "1", "6"]
    assert (by["alice"]["total"], by["alice"]["max"], by["alice"]["contract"]) == ("6", "6", "passed")
    assert (by["bob"]["vanilla_generator"], by["bob"]["vanilla_losses"], by["bob"]["total"]) == ("2", "0", "3")
    # The crashed submission: 0 everywhere, its problems in the row.
    assert [by["carol"][c[0]] for c in CHECKS] == ["0", "0", "0", "0"]
    assert by["carol"]["total"] == "0" and by["carol"]["contract"] == "not run"
    assert "kernel died" in by["carol"]["problems"]
    # Pass rate: share of all students (the crashed one counts as not passed).
    assert [by[PASS_RATE_ROW][c[0]] for c in CHECKS] == ["0.667", "0.333", "0.333", "0.667"]
    assert by[PASS_RATE_ROW]["contract"] == "0.667"


def test_markdown_table(reports, tmp_path):
    md = write_class_table(reports, tmp_path / "class.csv")["markdown"].read_text()
    assert md.startswith("# Class table: vanilla lab")
    assert "| student | `vanilla_generator` (2) | `vanilla_losses` (2) |" in md
    assert "| alice | 2 | 2 | 1 | 1 | 6 | 6 | passed |" in md
    assert "| **pass rate** | 67% | 33% | 33% | 67% |  |  | 67% |  |" in md
    assert "| `generate_contract` (1) | total | max | contract | problems |" in md
    assert "- `hidden_batch_of_one`: Generator with a batch of one" in md


def test_total_set_by_the_grader_wins_and_is_flagged(reports):
    tampered = copy.deepcopy(reports[0])
    tampered["points"] = 0.0          # e.g. the grader withheld all credit after a file outside the scratch folder changed
    tampered["problems"] = ["changed a file outside its scratch folder"]
    row = build_class_table([tampered]).rows[0]
    assert row["total"] == 0.0 and row["points"]["vanilla_generator"] == 2.0
    assert row["problems"][0] == "total 0 set by the grader, not the sum of the checks (6)"


def test_missing_optional_keys_are_tolerated():
    bare = {"submission": "/subs/dave.ipynb", "lab": "vanilla",
            "checks": [{"id": "vanilla_generator", "points": 1, "max_points": 2, "status": "failed"}]}
    table = build_class_table([bare])
    row = table.rows[0]
    assert row["student"] == "dave"                # from the submission's file name
    assert row["total"] == 1.0 and row["max"] == 2.0 and row["contract"] == "not run" and row["problems"] == []
    assert table.titles == {"vanilla_generator": "vanilla_generator"}


def test_mixed_labs_are_refused_by_one_table_and_split_by_write_class_tables(reports, tmp_path):
    mixed = [*reports, _report("erin", {"vanilla_generator"}, lab="cwgan")]
    with pytest.raises(ValueError, match=r"2 labs \(vanilla: alice, bob, carol; cwgan: erin\).*write_class_tables"):
        build_class_table(mixed)
    with pytest.raises(ValueError, match="2 labs"):
        write_class_table(mixed, tmp_path / "class.csv")
    paths = write_class_tables(mixed, tmp_path / "tables")
    assert sorted(paths) == ["cwgan", "vanilla"]
    assert paths["cwgan"]["csv"] == tmp_path / "tables" / "class_table_cwgan.csv"
    assert [r["student"] for r in _read(paths["vanilla"]["csv"])] == [MAX_ROW, "alice", "bob", "carol", PASS_RATE_ROW]
    assert [r["student"] for r in _read(paths["cwgan"]["csv"])] == [MAX_ROW, "erin", PASS_RATE_ROW]


def test_malformed_reports_are_clear_errors(reports):
    with pytest.raises(ValueError, match="No reports"):
        build_class_table([])
    with pytest.raises(ValueError, match="'alice' appears twice"):
        build_class_table([reports[0], reports[0]])
    other_version = copy.deepcopy(reports[1])
    other_version["checks"][0]["max_points"] = 3.0
    with pytest.raises(ValueError, match="'vanilla_generator' is worth 2 points in the report of alice but 3 .*bob"):
        build_class_table([reports[0], other_version])
    no_id = copy.deepcopy(reports[0])
    del no_id["checks"][1]["id"]
    with pytest.raises(ValueError, match="check without an 'id'"):
        build_class_table([no_id])
    text_points = copy.deepcopy(reports[0])
    text_points["checks"][0]["points"] = "2"
    with pytest.raises(ValueError, match="points of check 'vanilla_generator' in the report of alice must be a finite number"):
        build_class_table([text_points])
    with pytest.raises(ValueError, match="cannot be a student name"):
        build_class_table([_report(PASS_RATE_ROW, set())])
    reserved = copy.deepcopy(reports[0])
    reserved["checks"][0]["id"] = "total"
    with pytest.raises(ValueError, match="check named 'total'"):
        build_class_table([reserved])


# --------------------------------------------------------------------------- hand scores

def test_merge_hand_scores_adds_columns_and_totals(reports, tmp_path):
    table = write_class_table(reports, tmp_path / "class.csv")["csv"]
    hand = tmp_path / "hand.csv"
    hand.write_text("student,q_mode_collapse,q_ema\n(max points),3,2\nalice,3,1.5\nbob,1,\n\n", encoding="utf-8")
    result = merge_hand_scores(table, hand, tmp_path / "merged.csv")
    assert result["columns"] == ["q_mode_collapse", "q_ema"]
    assert result["ungraded"] == {"q_mode_collapse": ["carol"], "q_ema": ["bob", "carol"]}
    rows = _read(tmp_path / "merged.csv")
    assert list(rows[0])[-6:] == ["q_mode_collapse", "q_ema", "total", "max", "contract", "problems"]
    by = {r["student"]: r for r in rows}
    assert (by[MAX_ROW]["q_mode_collapse"], by[MAX_ROW]["q_ema"], by[MAX_ROW]["max"]) == ("3", "2", "11")
    assert (by["alice"]["q_mode_collapse"], by["alice"]["q_ema"], by["alice"]["total"], by["alice"]["max"]) == ("3", "1.5", "10.5", "11")
    assert (by["bob"]["q_ema"], by["bob"]["total"]) == ("", "4")
    assert (by["carol"]["q_mode_collapse"], by["carol"]["total"]) == ("", "0")
    assert by[PASS_RATE_ROW]["q_ema"] == "" and by[PASS_RATE_ROW]["vanilla_generator"] == "0.667"
    md = (tmp_path / "merged.md").read_text()
    assert "`q_mode_collapse` (3)" in md and "| alice | 2 | 2 | 1 | 1 | 3 | 1.5 | 10.5 | 11 | passed |" in md
    # The table the grader wrote is untouched.
    assert "q_ema" not in table.read_text()


def test_the_labs_answer_cells_are_the_hand_score_columns(reports, tmp_path):
    """The ids of the real answer cells (grade.answer_cells) are the columns of the hand-score CSV, and their
    points in ANSWER_POINTS its (max points) row."""
    import nbformat

    from helpers.course.grade import answer_cells
    from helpers.course.labs import ANSWER_POINTS, lab_named

    solution = nbformat.read(lab_named("vanilla").notebook_path(), as_version=4)
    by_hand = answer_cells(solution, solution)
    ids = [a["id"] for a in by_hand]
    assert ids and all(i.startswith("vanilla.answer_") for i in ids)
    reports = [dict(r, by_hand=by_hand) for r in reports]
    table = write_class_table(reports, tmp_path / "class.csv")["csv"]
    hand = tmp_path / "hand.csv"
    hand.write_text("\n".join([",".join(["student", *ids]), ",".join([MAX_ROW, *(f"{ANSWER_POINTS[i]:g}" for i in ids)]),
                               ",".join(["alice", *(f"{ANSWER_POINTS[i]:g}" for i in ids)])]) + "\n", encoding="utf-8")
    result = merge_hand_scores(table, hand, tmp_path / "merged.csv")
    assert result["columns"] == ids
    by = {r["student"]: r for r in _read(tmp_path / "merged.csv")}
    hand_max = sum(ANSWER_POINTS[i] for i in ids)
    assert float(by[MAX_ROW]["max"]) == 6 + hand_max and float(by["alice"]["total"]) == 6 + hand_max
    text = write_feedback(reports[0], tmp_path / "alice.feedback.md").read_text()
    assert all(f"{a['title']} (cell {a['cell']}, `{a['id']}`)" in text for a in by_hand), text


def test_merge_without_max_row_keeps_max(reports, tmp_path):
    table = write_class_table(reports, tmp_path / "class.csv")["csv"]
    hand = tmp_path / "hand.csv"
    hand.write_text("\ufeffstudent,q_ema\r\nalice,2\r\n", encoding="utf-8")   # BOM and CRLF from a spreadsheet
    merge_hand_scores(table, hand, table)                                    # in place
    by = {r["student"]: r for r in _read(table)}
    assert (by["alice"]["total"], by["alice"]["max"], by[MAX_ROW]["q_ema"]) == ("8", "6", "")


@pytest.mark.parametrize(
    "hand_text, message",
    [
        ("student,q_ema\nalice,2\nmallory,1\nzed,0\n", "not in .*class.csv: 'mallory', 'zed'. Known students: alice, bob, carol"),
        ("student,q_ema\nalice,two\n", "student 'alice', column 'q_ema': 'two' is not a number"),
        ("student,q_ema\nalice,-1\n", "'-1' is not a non-negative number"),
        ("student,q_ema\nalice,nan\n", "'nan' is not a non-negative number"),
        ("student,q_ema\n(max points),2\nalice,3\n", "3 is more than the 2 points"),
        ("student,q_ema\nalice,1\nalice,2\n", "'alice' twice"),
        ("name,q_ema\nalice,1\n", "must start with a 'student' column"),
        ("student\nalice\n", "one named column per answer"),
        ("student,vanilla_losses\nalice,1\n", "already has column.*vanilla_losses"),
        ("student,q_ema\nalice,1,5\n", "more cells than the header"),
    ],
)
def test_bad_hand_scores_are_clear_errors(reports, tmp_path, hand_text, message):
    table = write_class_table(reports, tmp_path / "class.csv")["csv"]
    hand = tmp_path / "hand.csv"
    hand.write_text(hand_text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        merge_hand_scores(table, hand, tmp_path / "merged.csv")
    assert not (tmp_path / "merged.csv").exists()


def test_merge_needs_a_class_table(reports, tmp_path):
    (tmp_path / "other.csv").write_text("name,score\nalice,3\n")
    (tmp_path / "hand.csv").write_text("student,q_ema\nalice,1\n")
    with pytest.raises(ValueError, match="not a class table"):
        merge_hand_scores(tmp_path / "other.csv", tmp_path / "hand.csv", tmp_path / "out.csv")
    with pytest.raises(FileNotFoundError, match="No hand-score file"):
        merge_hand_scores(write_class_table(reports, tmp_path / "class.csv")["csv"], tmp_path / "missing.csv",
                          tmp_path / "out.csv")


# --------------------------------------------------------------------------- feedback

def test_feedback_file(reports, tmp_path):
    bob = reports[1]
    bob["checks"][1]["hint"] = "use binary_cross_entropy_with_logits"
    bob["problems"] = ["cell 12 took 300 s"]
    text = write_feedback(bob, tmp_path / "fb" / "bob.md").read_text()
    assert text.startswith("# Feedback: bob (vanilla lab)")
    assert "Submission: `bob.ipynb`" in text
    assert "**Automatic points: 3 / 6.** The answer cells listed below are graded by hand" in text
    assert "- ✓ **Generator architecture** (`vanilla_generator`, visible): 2 / 2, passed" in text
    assert "- ✗ **BCE losses** (`vanilla_losses`, visible): 0 / 2, failed" in text
    assert "  > BCE losses: expected (4, 1, 28, 28), got (4, 784)" in text
    assert "  > Hint: use binary_cross_entropy_with_logits" in text
    assert "Status: **passed**" in text and "- ✓ shape and dtype: (5, 28, 28) float32" in text
    assert "- Why does the generator collapse? (cell 17, `q_mode_collapse`)" in text
    assert "## Problems\n\n- cell 12 took 300 s" in text
    assert "  > Generator with a batch of one: expected" in text
    quiet = write_feedback(bob, tmp_path / "quiet.md", hidden_messages=False).read_text()
    assert "**Generator with a batch of one** (`hidden_batch_of_one`, hidden): 0 / 1, failed" in quiet
    assert "  > Generator with a batch of one: expected" not in quiet
    assert "  > BCE losses: expected" in quiet


def test_feedback_for_a_crashed_submission(tmp_path):
    text = write_feedback(_crashed("carol"), tmp_path / "carol.md").read_text()
    assert "**Automatic points: 0 / 6.**" in text
    assert "No check ran: the notebook stopped before its checks" in text
    assert "Not checked (the notebook stopped before `generate` could be called)." in text
    assert "Nothing in this lab is graded by hand." in text
    assert "- the kernel died in cell 4 (os._exit)" in text


def test_feedback_shows_checkpoint_scores(reports, tmp_path):
    report = reports[0]
    report["checkpoint"] = {
        "thresholds_name": "ganlab-samples-v1 (n=2000)", "n": 2000, "passed": False,
        "thresholds": [
            {"name": "confident_fraction", "value": 0.62, "rule": ">= 0.8", "limit": 0.8, "floor": 0.98, "passed": False},
            {"name": "copy_share", "value": 0.004, "rule": "<= 0.05", "limit": 0.05, "floor": None, "passed": True},
        ],
    }
    text = write_feedback(report, tmp_path / "alice.md").read_text()
    assert "## Samples of your trained model" in text and "**not passed**" in text
    assert "| confident_fraction | 0.62 | 0.98 | >= 0.8 | ✗ |" in text
    assert "| copy_share | 0.004 |  | <= 0.05 | ✓ |" in text
