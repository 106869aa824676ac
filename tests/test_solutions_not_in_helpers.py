"""No solution reaches students through the code they receive: no line of a ``### BEGIN SOLUTION`` ...
``### END SOLUTION`` region of a solution notebook appears in ``helpers/**/*.py`` or in a script at the
repository root (``malaria_test.py``).

Lines are compared after removing indentation, trailing comments and repeated spaces; lines shorter
than :data:`MIN_CHARS` (``)``, ``nn.Flatten(),``, ``opt_D.step()``) say nothing about a solution and
are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from helpers.course.templates import lab_notebooks

REPO = Path(__file__).resolve().parents[1]
MIN_CHARS = 16


def normalise(line: str) -> str:
    code = re.sub(r"\s+#.*$", "", line.strip())  # a trailing comment (a solution line's own, or a copy's)
    return re.sub(r"\s+", " ", code).strip()


def solution_lines(notebook: Path) -> dict[str, str]:
    """``{normalised line: "notebook cell N"}`` of every non-trivial line inside a solution region."""
    lines: dict[str, str] = {}
    for index, cell in enumerate(nbformat.read(notebook, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        inside = False
        for line in cell.source.splitlines():
            marker = line.strip()
            if marker.startswith("### BEGIN SOLUTION"):
                inside = True
            elif marker.startswith("### END SOLUTION"):
                inside = False
            elif inside and len(normalise(line)) >= MIN_CHARS:
                lines.setdefault(normalise(line), f"{notebook.name} cell {index}")
    return lines


def shipped_code() -> list[Path]:
    return sorted((REPO / "helpers").rglob("*.py")) + sorted(REPO.glob("*.py"))


def test_every_solution_notebook_has_solution_lines():
    notebooks = lab_notebooks(REPO)
    assert {p.name for p in notebooks} >= {"lab8_vanilla.ipynb", "lab8_cwgan.ipynb", "dcgan_malaria.ipynb"}
    for notebook in notebooks:
        assert len(solution_lines(notebook)) >= 10, notebook.name  # the scan below sees the solutions


def test_no_solution_line_in_helpers_or_scripts():
    solutions: dict[str, str] = {}
    for notebook in lab_notebooks(REPO):
        solutions.update(solution_lines(notebook))
    found = []
    for path in shipped_code():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = normalise(line)
            if code in solutions:
                found.append(f"{path.relative_to(REPO)}:{number}: {code!r} (from {solutions[code]})")
    assert not found, "solution lines outside the notebooks:\n" + "\n".join(found)
