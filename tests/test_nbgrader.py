"""nbgrader itself makes our student templates from the solution notebooks.

nbgrader's own preprocessors run on each solution notebook of LABS in the order of
`nbgrader generate_assignment` (all of them but SaveCells, which only fills nbgrader's database), with
the code stub of our templates; the student version they produce must have, cell by cell (by id), the
sources of templates/<notebook>.ipynb, which has one extra cell: our note at the top. The real
`nbgrader generate_assignment` command is run once too, with the nbgrader_config.py the README shows.
"""

import copy
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbgrader.converters import GenerateAssignment
from nbgrader.nbgraderformat import ValidationError
from nbgrader.preprocessors import CheckCellMetadata, ClearHiddenTests, SaveCells
from traitlets.config import Config

from helpers.course.labs import LABS
from helpers.course.templates import NOTE_CELL_ID

CODE_STUB = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
# What the README tells instructors to put in nbgrader_config.py.
NBGRADER_CONFIG = 'c = get_config()\nc.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}\n'


def _config() -> Config:
    return Config({"ClearSolutions": {"code_stub": CODE_STUB, "enforce_metadata": True},
                   "ClearHiddenTests": {"enforce_metadata": True}})


def generate_assignment(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version nbgrader makes of ``solution`` (a copy; ``solution`` is not changed)."""
    nb = copy.deepcopy(solution)
    resources: dict = {}
    preprocessors = [cls for cls in GenerateAssignment.class_traits()["preprocessors"].default() if cls is not SaveCells]
    assert {cls.__name__ for cls in preprocessors} >= {"CheckCellMetadata", "ClearSolutions", "ClearHiddenTests",
                                                        "ClearOutput", "LockCells"}
    for cls in preprocessors:
        nb, resources = cls(config=_config()).preprocess(nb, resources)
    return nb


def differences(student: nbformat.NotebookNode, template: nbformat.NotebookNode) -> list[str]:
    """Where nbgrader's student version and our template differ: cells by id, sources exactly.

    The one difference by design: nbgrader keeps the run record in the solution's title cell (it does not know it;
    an instructor who uses nbgrader sees it there), our template drops it with the outputs it describes.
    """
    from helpers.course.run_record import without_run_record

    for cell in student.cells:
        cell.source = without_run_record(cell.source)
    ours = {c.id: c for c in template.cells if c.id != NOTE_CELL_ID}
    theirs = {c.id: c for c in student.cells}
    found = [f"cell {i} missing from nbgrader's version" for i in ours if i not in theirs]
    found += [f"cell {i} missing from the template" for i in theirs if i not in ours]
    found += [f"cell {i}: nbgrader gives {theirs[i].source!r}, the template {ours[i].source!r}"
              for i in ours if i in theirs and theirs[i].source != ours[i].source]
    if [c.id for c in student.cells] != [c.id for c in template.cells if c.id != NOTE_CELL_ID]:
        found.append("the cells are in another order")
    return found


@pytest.fixture(params=LABS, ids=[lab.name for lab in LABS])
def lab(request):
    return request.param


def _solution(lab) -> nbformat.NotebookNode:
    return nbformat.read(lab.notebook_path(), as_version=4)


def test_nbgrader_makes_our_template(lab):
    template = nbformat.read(lab.template_path(), as_version=4)
    assert template.cells[0].id == NOTE_CELL_ID
    student = generate_assignment(_solution(lab))
    assert differences(student, template) == []
    # What nbgrader does besides: no outputs, test cells locked (not editable), nothing left of the solutions.
    assert all(c.get("outputs", []) == [] for c in student.cells)
    graded = [c for c in student.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert graded and all(c.metadata["nbgrader"]["points"] > 0 for c in graded)
    assert all(c.metadata.get("editable") is False for c in graded if c.cell_type == "code")
    text = "\n".join(c.source for c in student.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "YOUR ANSWER HERE" in text


def test_nbgrader_refuses_a_solution_cell_without_its_metadata(lab):
    solution = _solution(lab)
    cell = next(c for c in solution.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution"))
    del cell.metadata["nbgrader"]
    with pytest.raises(RuntimeError, match="Solution region detected in a non-solution cell"):
        generate_assignment(solution)


def test_nbgrader_refuses_hidden_tests_outside_a_grade_cell():
    solution = _solution(LABS[0])
    cell = next(c for c in solution.cells if "BEGIN HIDDEN TESTS" in c.source)
    del cell.metadata["nbgrader"]
    with pytest.raises(RuntimeError, match="Hidden test region detected in a non-grade cell"):
        ClearHiddenTests(config=_config()).preprocess(solution, {})


def test_nbgrader_refuses_metadata_without_a_grade_id():
    solution = _solution(LABS[0])
    cell = next(c for c in solution.cells if c.metadata.get("nbgrader", {}).get("grade"))
    del cell.metadata["nbgrader"]["grade_id"]
    with pytest.raises(ValidationError):
        CheckCellMetadata().preprocess(solution, {})


def test_a_changed_solution_region_shows_in_the_comparison(lab):
    """The comparison fails when the solution and the committed template disagree: here the END SOLUTION
    marker moved up one line, so the last line of the region would reach the students."""
    solution = _solution(lab)
    cell = next(c for c in solution.cells if c.cell_type == "code" and "### END SOLUTION" in c.source)
    lines = cell.source.split("\n")
    end = next(i for i, line in enumerate(lines) if line.strip() == "### END SOLUTION")
    leaked = lines[end - 1]
    lines[end - 1], lines[end] = lines[end], lines[end - 1]
    cell.source = "\n".join(lines)
    found = differences(generate_assignment(solution), nbformat.read(lab.template_path(), as_version=4))
    assert len(found) == 1 and f"cell {cell.id}:" in found[0] and leaked.strip() in found[0], found


def test_the_nbgrader_command_with_the_readme_config(tmp_path):
    """`nbgrader generate_assignment` itself, in a course folder with the README's nbgrader_config.py."""
    source = tmp_path / "source" / "gan-lab"
    source.mkdir(parents=True)
    for lab in LABS:
        shutil.copy(lab.notebook_path(), source / lab.notebook_path().name)
    (tmp_path / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
    run = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "gan-lab", "--no-db"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    for lab in LABS:
        student = nbformat.read(tmp_path / "release" / "gan-lab" / lab.notebook_path().name, as_version=4)
        assert differences(student, nbformat.read(lab.template_path(), as_version=4)) == [], lab.name
