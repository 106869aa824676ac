"""nbgrader's cell metadata in the solution notebooks, generated from the tables of points.

    python -m helpers.course.templates           # writes it into the solution notebooks (then the templates)
    python -m helpers.course.templates --check   # exits 1 naming every cell whose metadata differs

Every cell of a lab's solution notebook gets what nbgrader's "Create Assignment" toolbar would give
it, ``metadata.nbgrader`` in schema version 3 (``grade``, ``grade_id``, ``locked``, ``schema_version``,
``solution``, ``task``, and ``points`` on grade cells), from the cell's content and the tables
``POINTS`` and ``ANSWER_POINTS`` of :mod:`helpers.course.labs`:

* a code cell with a ``### BEGIN SOLUTION`` region (the TODO code) is an *autograded answer*:
  ``solution: true, grade: false``;
* an answer cell, a markdown cell that is one solution region and nothing else, with id
  ``<lab>-answer-<name>``, is a *manually graded answer*: ``solution: true, grade: true`` and the
  points of its row ``<lab>.answer_<name>`` in ``ANSWER_POINTS``;
* a test cell, a code cell that calls graded checks or holds hidden tests, is *autograder tests*:
  ``grade: true, solution: false, locked: true`` and the sum of the ``POINTS`` rows it tests. A call
  of a check tests the row of the ``GradedCheck`` whose ``check`` names that call (``GRADED`` in
  ``helpers/checks/<lab>.py``); a call of the lab's ``GENERATE_CHECK`` tests ``<lab>.generate``; a
  hidden-tests region tests the row on its ``# hidden test <lab>.<name>`` line;
* every other cell has no nbgrader metadata. None is made read-only: nbgrader would then refuse
  harmless edits (a student changing the parameters cell or trying things in a figure cell), and
  nothing outside the test cells is graded.

``grade_id`` is the cell id when it starts with ``<lab>-`` (answer and test cells), else
``<lab>-<cell id>`` (solution cells keep their ids: ``cell-09`` gives ``vanilla-cell-09``).

Errors (:class:`~helpers.course.regions.TemplateError`, naming the notebook and the cell): a cell that
is both a solution and a test cell (split it: the check calls and hidden tests go to a cell of their
own right after the solution); a call of a check that no ``GradedCheck`` names; a row tested by a cell
but not in ``POINTS``; a ``POINTS`` row that no cell tests, or that two cells test; an answer cell with
text outside its region or without its ``ANSWER_POINTS`` row, and a row without its answer cell; a
``grade_id`` outside nbgrader's pattern (letters, digits, ``_``, ``-``) or used twice.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import nbformat

from helpers.course.labs import ANSWER_POINTS, POINTS, Lab, answer_cell_id
from helpers.course.regions import (TemplateError, hidden_test_ids, remove_hidden_tests,
                                    solution_regions)

SCHEMA_VERSION = 3
GRADE_ID = re.compile(r"^[A-Za-z0-9_\-]+$")  # nbgrader's schema (nbgraderformat/v3.json)
_CHECK_FIELD = re.compile(r"^(?P<name>\w+)(?:\((?P<argument>\w+)\))?$")


def nbgrader_metadata(grade_id: str, *, solution: bool, grade: bool, locked: bool,
                      points: float | None = None) -> dict[str, Any]:
    """One cell's ``metadata.nbgrader`` as nbgrader's toolbar writes it (``points`` only on grade cells)."""
    meta: dict[str, Any] = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": SCHEMA_VERSION,
                            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return meta


def _check_calls(lab: Lab) -> tuple[dict[str, list[tuple[str | None, str]]], set[str]]:
    """``{check function: [(first argument or None, POINTS row)]}`` from the lab's GRADED and GENERATE_CHECK,
    and the names of every check function the lab's checks module offers."""
    module = lab.checks_module()
    calls: dict[str, list[tuple[str | None, str]]] = {}
    for record in module.GRADED:
        m = _CHECK_FIELD.match(record.check or "")
        if not m:
            raise TemplateError(f"{lab.checks}: GradedCheck {record.id!r} has check={record.check!r}; it must name "
                                f"the notebook's call, `check_x` or `check_x(first_argument)`.")
        calls.setdefault(m["name"], []).append((m["argument"], record.id))
    calls.setdefault(module.GENERATE_CHECK, []).append((None, f"{lab.name}.generate"))
    offered = {n for n in getattr(module, "__all__", dir(module)) if n.startswith("check_")}
    return calls, offered | set(calls)


def tested_rows(source: str, lab: Lab, where: str) -> list[str]:
    """The POINTS rows a code cell tests (see module doc), in the order of the cell; ``[]`` for most cells."""
    calls, offered = _check_calls(lab)
    lines = source.split("\n")
    visible = [ln for ln in remove_hidden_tests(lines, where) if not ln.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(visible))
    except SyntaxError as err:
        raise TemplateError(f"{where}, line {err.lineno}: the cell does not parse ({err.msg}).") from None
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in offered):
            continue
        name = node.func.id
        first = node.args[0].id if node.args and isinstance(node.args[0], ast.Name) else None
        rows = [row for argument, row in calls.get(name, []) if argument in (None, first)]
        if not calls.get(name):
            raise TemplateError(f"{where}, line {node.lineno}: calls {name}, which no GradedCheck of {lab.checks} "
                                f"names (check=...): register it in GRADED with a row of POINTS, or remove the call.")
        if len(rows) != 1:
            named = ", ".join(f"{name}({a})" if a else name for a, _ in calls[name])
            raise TemplateError(f"{where}, line {node.lineno}: the call {name}({first or '...'}, ...) matches "
                                f"{len(rows)} GradedCheck records of {lab.checks} ({named}); name its first argument "
                                f"in their check=... so that exactly one matches.")
        found.append((node.lineno, rows[0]))
    return [row for _, row in sorted(found)] + hidden_test_ids(lines, where)


def _is_answer_cell(cell: nbformat.NotebookNode, where: str) -> bool:
    """A markdown cell with a solution region; raises unless the region is all the cell holds."""
    lines = cell.source.split("\n")
    regions = solution_regions(lines, where)
    if not regions:
        return False
    inside = {i for begin, end in regions for i in range(begin, end + 1)}
    outside = [i + 1 for i, line in enumerate(lines) if i not in inside and line.strip()]
    if len(regions) > 1 or outside:
        raise TemplateError(f"{where}: an answer cell must be one solution region and nothing else (text at line "
                            f"{(outside or [regions[1][0] + 1])[0]}); put the question in the markdown cell above it.")
    return True


def expected_metadata(nb: nbformat.NotebookNode, lab: Lab, name: str) -> list[dict[str, Any] | None]:
    """The ``metadata.nbgrader`` every cell of ``nb`` (the solution notebook ``name`` of ``lab``) should have.

    Raises:
        TemplateError: see the module doc.
    """
    answer_rows = {answer_cell_id(row): row for row in ANSWER_POINTS if row.split(".", 1)[0] == lab.name}
    lab_rows = [row for row in POINTS if row.split(".", 1)[0] == lab.name]
    tested_in: dict[str, str] = {}
    answered: set[str] = set()
    grade_ids: dict[str, str] = {}
    expected: list[dict[str, Any] | None] = []
    for i, cell in enumerate(nb.cells):
        cell_id = cell.get("id") or f"cell-{i}"
        where = f"{name}, cell {i} (id {cell_id})"
        grade_id = cell_id if cell_id.startswith(f"{lab.name}-") else f"{lab.name}-{cell_id}"
        meta = None
        if cell.cell_type == "markdown" and _is_answer_cell(cell, where):
            if cell_id not in answer_rows:
                raise TemplateError(f"{where}: an answer cell whose id is no row of ANSWER_POINTS "
                                    f"(helpers/course/labs.py); its id must be {lab.name}-answer-<name> for the row "
                                    f"{lab.name}.answer_<name> (rows of this lab: {', '.join(answer_rows.values())}).")
            answered.add(answer_rows[cell_id])
            meta = nbgrader_metadata(grade_id, solution=True, grade=True, locked=False,
                                     points=ANSWER_POINTS[answer_rows[cell_id]])
        elif cell.cell_type == "code":
            is_solution = bool(solution_regions(cell.source.split("\n"), where))
            rows = tested_rows(cell.source, lab, where)
            if is_solution and rows:
                raise TemplateError(f"{where}: holds a solution region and tests {', '.join(rows)}; nbgrader cannot "
                                    f"grade a cell that is both. Move the check calls and hidden tests to a new cell "
                                    f"right after it (id {lab.name}-test-<name>).")
            for row in rows:
                if row not in POINTS:
                    raise TemplateError(f"{where}: tests {row}, which is not a row of POINTS (helpers/course/labs.py).")
                if row in tested_in:
                    raise TemplateError(f"{where}: tests {row}, which {tested_in[row]} tests already.")
                tested_in[row] = where
            if is_solution:
                meta = nbgrader_metadata(grade_id, solution=True, grade=False, locked=False)
            elif rows:
                meta = nbgrader_metadata(grade_id, solution=False, grade=True, locked=True,
                                         points=sum(POINTS[row] for row in rows))
        if meta is not None:
            if not GRADE_ID.match(grade_id):
                raise TemplateError(f"{where}: grade_id {grade_id!r} has characters nbgrader refuses (letters, digits, "
                                    f"_ and - only); change the cell id.")
            if grade_id in grade_ids:
                raise TemplateError(f"{where}: grade_id {grade_id!r} is taken by {grade_ids[grade_id]}.")
            grade_ids[grade_id] = where
        expected.append(meta)
    untested = [row for row in lab_rows if row not in tested_in]
    if untested:
        raise TemplateError(f"{name}: no cell tests the POINTS row(s) {', '.join(untested)} (helpers/course/labs.py): "
                            f"call the check the GradedCheck names, or add the hidden test, in a cell of this notebook.")
    unanswered = sorted(set(answer_rows.values()) - answered)
    if unanswered:
        raise TemplateError(f"{name}: no answer cell for the ANSWER_POINTS row(s) {', '.join(unanswered)}: add a markdown "
                            f"cell with id {', '.join(answer_cell_id(r) for r in unanswered)} after its question.")
    return expected


def metadata_drift(nb: nbformat.NotebookNode, lab: Lab, name: str) -> list[str]:
    """One line per cell whose ``metadata.nbgrader`` differs from :func:`expected_metadata`."""
    drift = []
    for i, (cell, want) in enumerate(zip(nb.cells, expected_metadata(nb, lab, name))):
        have = cell.get("metadata", {}).get("nbgrader")
        if have != want:
            keys = sorted(k for k in set(have or {}) | set(want or {}) if (have or {}).get(k) != (want or {}).get(k))
            drift.append(f"{name}, cell {i} (id {cell.get('id')}): nbgrader metadata "
                         + (f"differs in {', '.join(keys)}" if have and want else "missing" if want else "not expected"))
    return drift


def write_metadata(lab: Lab, root: str | Path) -> list[str]:
    """Give every cell of ``lab``'s solution notebook under ``root`` its nbgrader metadata; the drift it fixed.

    Only ``metadata.nbgrader`` changes (sources, outputs and other metadata stay), and the file is
    written only when something changed.
    """
    path = lab.notebook_path(root)
    nb = nbformat.read(path, as_version=4)
    drift = metadata_drift(nb, lab, path.name)
    if drift:
        for cell, want in zip(nb.cells, expected_metadata(nb, lab, path.name)):
            if want is None:
                cell.metadata.pop("nbgrader", None)
            else:
                cell.metadata["nbgrader"] = want
        nbformat.write(nb, path)
    return drift
