"""The grader: solution all passed, template not implemented, hangs, crashes and deletions reported."""

import json

import nbformat
import pytest

from helpers.course.grade import grade, infer_lab, main
from helpers.course.templates import render_template

from conftest import REPO_ROOT

VANILLA = REPO_ROOT / "lab8_vanilla.ipynb"
VANILLA_CHECKS = ["check_generator", "check_discriminator", "check_vanilla_losses", "check_train_step",
                  "check_generate"]


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nbformat.write(nb, path)
    return path


def test_solution_grades_all_passed(tmp_path):
    report = grade(VANILLA, out_dir=tmp_path / "out", timeout=300, watch=[])
    assert report["lab"] == "vanilla"
    assert [c["check"] for c in report["checks"]] == VANILLA_CHECKS
    assert all(c["status"] == "passed" for c in report["checks"]), report["checks"]
    assert report["generate"]["status"] == "passed", report["generate"]
    assert report["execution"]["errored_cells"] == [] and report["execution"]["stopped"] is None
    assert report["problems"] == [] and report["grader_errors"] == []
    assert report["all_passed"] is True
    # the reports on disk say the same, and the scratch folder is gone
    saved = json.loads((tmp_path / "out" / "lab8_vanilla.grade.json").read_text())
    assert saved["all_passed"] is True and saved["summary"] == report["summary"]
    md = (tmp_path / "out" / "lab8_vanilla.grade.md").read_text()
    assert "**All passed**" in md and "| `check_generator` | 10 | ✓ passed |" in md
    assert "disposable environment" in md
    executed = nbformat.read(tmp_path / "out" / "lab8_vanilla.executed.ipynb", as_version=4)
    assert "ganlab-grade-probe" in executed.cells[-1].metadata["tags"]
    assert not (tmp_path / "out" / "checkpoints").exists()
    assert not __import__("os").path.exists(report["workdir"])


def test_template_grades_with_the_first_check_not_implemented(tmp_path):
    path = tmp_path / "lab8_vanilla.ipynb"
    path.write_text(render_template(VANILLA), encoding="utf-8")
    report = grade(path, out_dir=tmp_path / "out", timeout=300, watch=[])
    statuses = {c["check"]: c["status"] for c in report["checks"]}
    assert report["checks"][0]["check"] == "check_generator"
    assert report["checks"][0]["status"] == "not implemented"
    assert report["checks"][0]["cell"] == 11  # the note cell comes first in a template
    assert set(statuses.values()) == {"not implemented"}, statuses
    errored = report["execution"]["errored_cells"]
    assert errored[0]["cell"] == 11 and errored[0]["ename"] == "NotImplementedError" and errored[0]["todo"]
    assert report["execution"]["cells_run"] == report["execution"]["code_cells"]  # later checks still ran
    assert report["generate"]["status"] == "failed"
    assert "NotImplementedError" in report["generate"]["items"][0]["detail"]
    assert report["all_passed"] is False
    assert "0/5 checks passed; first not passed: check_generator (not implemented)" in report["summary"]


def test_infinite_loop_times_out(tmp_path):
    path = _notebook(tmp_path / "lab8_vanilla_loop.ipynb", "print('started')", "while True:\n    pass",
                     "print('never')")
    report = grade(path, out_dir=tmp_path / "out", timeout=8, watch=[])
    assert report["execution"]["stopped"] == "timeout"
    assert report["execution"]["stopped_cell_number"] == 2
    assert report["execution"]["cells_run"] == 1
    assert any("timed out after 8 s in cell 2" in p for p in report["problems"]), report["problems"]
    assert report["duration_s"] < 60
    assert [c["status"] for c in report["checks"]] == ["missing"] * len(VANILLA_CHECKS)
    assert report["all_passed"] is False
    assert "timeout in cell 2" in (tmp_path / "out" / "lab8_vanilla_loop.grade.md").read_text()


def test_deleting_files_outside_its_folder_is_reported(tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("course data")
    (outside / "also.txt").write_text("more")
    path = _notebook(tmp_path / "lab8_vanilla_rm.ipynb",
                     f"import os, shutil\nos.remove({str(outside / 'keep.txt')!r})",
                     "shutil.rmtree(os.path.join('..', 'guard'))  # the sentinel folder beside the work folder",
                     "open('inside.txt', 'w').write('fine: its own folder')")
    report = grade(path, out_dir=tmp_path / "out", timeout=120, watch=[outside])
    integrity = report["integrity"]
    assert str(outside / "keep.txt") in integrity["deleted"]
    assert str(outside / "also.txt") not in integrity["deleted"]
    assert any(p.endswith("guard/SENTINEL.txt") for p in integrity["deleted"])
    assert not any("inside.txt" in p for p in integrity["added"])
    assert any("outside its folder" in p for p in report["problems"])
    md = (tmp_path / "out" / "lab8_vanilla_rm.grade.md").read_text()
    assert f"- deleted: `{outside / 'keep.txt'}`" in md
    assert report["all_passed"] is False


def test_a_crashing_kernel_is_reported(tmp_path):
    path = _notebook(tmp_path / "crash.ipynb", "import os\nos._exit(3)", "print('never')")
    report = grade(path, lab="vanilla", out_dir=tmp_path / "out", timeout=60, watch=[])
    assert report["execution"]["stopped"] == "kernel died"
    assert report["execution"]["stopped_cell_number"] == 1
    assert any("kernel died" in p for p in report["problems"])
    assert report["grader_errors"] == []


def test_unreadable_notebook_and_usage_errors(tmp_path, capsys):
    bad = tmp_path / "lab8_cwgan_broken.ipynb"
    bad.write_text("{not json")
    assert main([str(bad), "--out", str(tmp_path / "out")]) == 0  # a report, not a crash
    report = json.loads((tmp_path / "out" / "lab8_cwgan_broken.grade.json").read_text())
    assert report["lab"] == "cwgan" and report["all_passed"] is False
    assert report["problems"][0].startswith("unreadable notebook")
    with pytest.raises(SystemExit) as info:
        main([str(tmp_path / "missing.ipynb")])
    assert info.value.code == 2
    unknown = _notebook(tmp_path / "homework.ipynb", "print(1)")
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
