"""The grader: a correct solution gets full marks, the template none; the report's records; one table of points.

The solution is graded once (module fixture) and its report read by several tests. Hostile
submissions are in test_grade_hostile.py.
"""

import json
import os

import nbformat
import pytest

from helpers.course.grade import answer_cells, grade, hidden_tests, infer_lab, main
from helpers.course.labs import ANSWER_POINTS, LABS, POINTS, answer_cell_id, lab_answer_points, lab_named, lab_points

from conftest import REPO_ROOT
from grade_support import VANILLA, cell_index, template, tiny, write

VANILLA_CHECKS = ["vanilla.generator", "vanilla.discriminator", "vanilla.losses", "vanilla.train_step",
                  "vanilla.generate", "vanilla.generator_latent_dim", "vanilla.train_step_batch",
                  "vanilla.generate_sizes"]
CHECK_KEYS = {"id", "title", "kind", "points", "max_points", "status", "message"}


@pytest.fixture(scope="module")
def solution_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("solution")
    return grade(VANILLA, out_dir=out, timeout=600, watch=[]), out


def test_the_solution_gets_full_marks(solution_report):
    report, out = solution_report
    assert report["lab"] == "vanilla" and report["student"] == "lab8_vanilla"
    assert [c["id"] for c in report["checks"]] == VANILLA_CHECKS
    assert all(set(c) == CHECK_KEYS for c in report["checks"])
    assert all(c["status"] == "passed" for c in report["checks"]), [c for c in report["checks"] if c["status"] != "passed"]
    assert {c["kind"] for c in report["checks"]} == {"visible", "contract", "hidden"}
    assert report["points"] == report["max_points"] == sum(lab_points("vanilla").values()) > 0
    assert report["contract"]["status"] == "passed"
    items = {i["id"]: i for i in report["contract"]["items"]}
    assert items["not_copies"]["ok"] and items["mode_restored"]["ok"] and items["same_seed"]["ok"]
    assert report["problems"] == [] and report["tampering"] == [] and report["grader_errors"] == []
    assert report["execution"]["errored_cells"] == [] and report["execution"]["stopped"] is None
    assert report["execution"]["cells_run"] == report["execution"]["code_cells"]
    assert [a["id"] for a in report["by_hand"]] == list(lab_answer_points("vanilla")) and report["all_passed"] is True
    assert not os.path.exists(report["workdir"])  # the scratch folder is gone


def test_the_reports_on_disk_say_the_same(solution_report):
    report, out = solution_report
    saved = json.loads((out / "lab8_vanilla.grade.json").read_text())
    assert saved["points"] == report["points"] and saved["checks"] == report["checks"]
    md = (out / "lab8_vanilla.grade.md").read_text()
    assert f"**{report['max_points']:g} / {report['max_points']:g} automatic points**" in md
    assert "| `vanilla.generate_sizes`" in md and "| hidden | ✓ passed |" in md
    assert "disposable environment" in md and "Nothing the notebook printed counts" in md
    hand = lab_answer_points("vanilla")
    for answer_id, points in hand.items():  # each answer cell with its points, and their sum
        assert f"(`{answer_id}`), {points:g} points" in md, md
    assert f"Up to {sum(hand.values()):g} more points by hand" in md


def test_the_template_gets_no_points(tmp_path):
    path = write(template(), tmp_path / "lab8_vanilla.ipynb")
    report = grade(path, out_dir=tmp_path / "out", timeout=300, watch=[])
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    assert statuses["vanilla.generator"] == "not implemented"
    assert "passed" not in statuses.values(), statuses
    assert report["contract"]["status"] in ("failed", "not implemented")
    errored = report["execution"]["errored_cells"]
    # The first error is the generator's check: the first TODO cell only defines the class.
    assert errored[0]["cell"] == cell_index(template(), "check_generator(Generator") + 1
    assert errored[0]["ename"] == "NotImplementedError"
    assert report["execution"]["cells_run"] == report["execution"]["code_cells"]  # later cells still ran
    assert report["points"] == 0 and report["max_points"] == sum(lab_points("vanilla").values())
    assert report["problems"] == []  # nothing hostile: simply nothing implemented
    assert "0/14 points" in report["summary"] or report["summary"].startswith("0/")


def test_one_table_of_points_names_every_graded_check():
    for lab in LABS:
        module = lab.checks_module()
        ids = [r.id for r in module.GRADED] + [f"{lab.name}.generate"] + [t["id"] for t in hidden_tests(lab.notebook_path())]
        assert len(ids) == len(set(ids)), ids
        assert sorted(ids) == sorted(lab_points(lab.name)), lab.name  # every check has points, every row a check
        assert all(POINTS[i] > 0 for i in ids)
    assert set(POINTS) == {i for lab in LABS for i in lab_points(lab.name)}


def test_every_lab_has_hidden_tests_and_templates_have_none():
    for lab in LABS:
        tests = hidden_tests(lab.notebook_path())
        assert tests, f"{lab.notebook} has no hidden test"
        assert all(t["id"].startswith(lab.name + ".") and t["title"] and t["source"].strip() for t in tests)
        text = lab.template_path().read_text()
        assert "HIDDEN TESTS" not in text and "hidden test" not in text
        for t in tests:
            assert t["source"].split("\n", 1)[1].strip() not in text


def test_a_hidden_region_without_an_id_is_refused(tmp_path):
    path = tiny(tmp_path / "x.ipynb", "x = 1\n### BEGIN HIDDEN TESTS\nassert x == 1\n### END HIDDEN TESTS")
    with pytest.raises(ValueError, match="hidden test <lab>.<name>"):
        hidden_tests(path)


def test_answer_cells_are_listed_for_grading_by_hand():
    md = nbformat.v4.new_markdown_cell
    sol = nbformat.v4.new_notebook(cells=[
        md("## 1 · Architectures\n\nSome teaching text."),
        md("### Question: Why a sigmoid?\n\nExplain in two sentences."),
        md("### BEGIN SOLUTION\nBecause.\n### END SOLUTION"),
        md("Just text"),
        nbformat.v4.new_code_cell("##TODO## x\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION"),
        md("### Question 2: not in the table?\n### BEGIN SOLUTION\nNo.\n### END SOLUTION")])
    for i, cell in enumerate(sol.cells):
        cell["id"] = f"c{i}"
    sol.cells[2]["id"] = "vanilla-answer-dc"  # the cell of the ANSWER_POINTS row vanilla.answer_dc
    sub = nbformat.v4.new_notebook(cells=[md("note"), *[nbformat.from_dict(c) for c in sol.cells]])
    sub.cells[0]["id"] = "note"
    assert answer_cells(sol, sub) == [
        {"id": "vanilla.answer_dc", "cell": 4, "title": "Why a sigmoid?", "points": ANSWER_POINTS["vanilla.answer_dc"]},
        {"id": "c5", "cell": 7, "title": "Question 2: not in the table?", "points": None}]
    del sub.cells[3]
    assert answer_cells(sol, sub)[0]["cell"] is None  # the student deleted the answer cell


def test_every_question_has_an_answer_cell_with_points():
    for lab in LABS:
        nb = nbformat.read(lab.notebook_path(), as_version=4)
        answers = answer_cells(nb, nb)
        assert sorted(a["id"] for a in answers) == sorted(lab_answer_points(lab.name)), lab.name
        assert all(a["title"].endswith("?") for a in answers), answers
        assert all(a["points"] == ANSWER_POINTS[a["id"]] > 0 for a in answers)
        template_cells = {c.id: c for c in template(lab.notebook_path()).cells}
        for a in answers:  # the student sees the question, and nothing of the model answer
            assert template_cells[answer_cell_id(a["id"])].source == "YOUR ANSWER HERE", a["id"]
    assert set(ANSWER_POINTS) == {a for lab in LABS for a in lab_answer_points(lab.name)}
    assert not set(ANSWER_POINTS) & set(POINTS)  # hand-graded points stay out of the automatic totals


def test_unreadable_notebook_and_usage_errors(tmp_path, capsys):
    bad = tmp_path / "lab8_cwgan_broken.ipynb"
    bad.write_text("{not json")
    assert main([str(bad), "--out", str(tmp_path / "out")]) == 0  # a report, not a crash
    report = json.loads((tmp_path / "out" / "lab8_cwgan_broken.grade.json").read_text())
    assert report["lab"] == "cwgan" and report["points"] == 0 and report["all_passed"] is False
    assert report["problems"][0].startswith("unreadable notebook")
    with pytest.raises(SystemExit) as info:
        main([str(tmp_path / "missing.ipynb")])
    assert info.value.code == 2
    unknown = tiny(tmp_path / "homework.ipynb", "print(1)")
    with pytest.raises(SystemExit) as info:
        main([str(unknown)])
    assert info.value.code == 2 and "--lab" in capsys.readouterr().err


def test_infer_lab():
    assert infer_lab("lab8_vanilla.ipynb") == "vanilla"
    assert infer_lab("submissions/jdoe_lab8_cwgan.ipynb") == "cwgan"
    assert infer_lab("dcgan_malaria (1).ipynb") == "malaria"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('env = setup_lab("cwgan", profile=PROFILE)')])
    assert infer_lab("homework.ipynb", nb) == "cwgan"
    assert infer_lab("homework.ipynb") is None
    assert lab_named("malaria").notebook_path() == REPO_ROOT / "dcgan_malaria.ipynb"


def test_the_other_solutions_get_full_marks(tmp_path):
    """cWGAN-GP (copies scored on Fashion-MNIST) and Lab 3 (patches, two GANs), graded side by side."""
    from concurrent.futures import ThreadPoolExecutor

    from lab3_support import sample_root

    sample_root()  # fails (never skips) without the malaria sample
    labs = [lab_named("cwgan"), lab_named("malaria")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda lab: grade(lab.notebook_path(), out_dir=tmp_path, timeout=900, watch=[]), labs))
    for lab, report in zip(labs, reports):
        not_passed = [c for c in report["checks"] if c["status"] != "passed"]
        assert not_passed == [] and report["problems"] == [] and report["tampering"] == [], (not_passed, report["problems"])
        assert report["points"] == report["max_points"] == sum(lab_points(lab.name).values())
        assert {c["kind"] for c in report["checks"]} == {"visible", "contract", "hidden"}
    items = {i["id"]: i for i in reports[0]["contract"]["items"]}
    assert items["not_copies"]["ok"] and items["class_9"]["ok"] and items["mode_restored"]["ok"]


def test_the_fc_lab_is_graded_solution_full_marks_template_none_a_mistake_named(tmp_path):
    """The extra fully connected lab: its solution, its template, and a discriminator whose dropout ignores eval mode."""
    from concurrent.futures import ThreadPoolExecutor

    lab = lab_named("fc")
    broken = nbformat.read(lab.notebook_path(), as_version=4)  # the solution with one mistake: dropout always on
    cell = next(c for c in broken.cells if c.cell_type == "code" and "class Discriminator(" in c.source)
    assert cell.source.count("nn.Dropout(dropout)") == 2, "update this test: the solution's dropout changed"
    cell.source = ("class AlwaysDropout(nn.Dropout):\n    def forward(self, h):\n"
                   "        return F.dropout(h, self.p, training=True)\n\n\n"
                   + cell.source.replace("nn.Dropout(dropout)", "AlwaysDropout(dropout)"))
    paths = [lab.notebook_path(), write(template(lab.notebook_path()), tmp_path / "fc_gan_template.ipynb"),
             write(broken, tmp_path / "fc_gan_dropout.ipynb")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        solution, empty, wrong = pool.map(lambda p: grade(p, lab="fc", out_dir=tmp_path / "out", timeout=900, watch=[]),
                                          paths)
    total = sum(lab_points("fc").values())
    assert solution["lab"] == "fc" and solution["points"] == solution["max_points"] == total, solution["checks"]
    assert solution["problems"] == [] and solution["contract"]["status"] == "passed"
    assert [a["id"] for a in solution["by_hand"]] == list(lab_answer_points("fc"))
    assert empty["points"] == 0 and empty["max_points"] == total
    assert {c["status"] for c in empty["checks"]} == {"not implemented"}, empty["checks"]
    statuses = {c["id"]: c for c in wrong["checks"]}
    assert statuses["fc.discriminator"]["status"] == "failed"
    assert "dropout is still active" in statuses["fc.discriminator"]["message"], statuses["fc.discriminator"]
    assert statuses["fc.discriminator_other"]["status"] == "failed"
    assert statuses["fc.generator"]["status"] == statuses["fc.losses"]["status"] == "passed"
    assert 0 < wrong["points"] < total
