"""The one way course tooling and tests reach a notebook's own code.

A lab notebook is the only place where its solution lives (the architectures, the losses, the
training step, ``generate``). Tools that need that code (the tests, the command that regenerates the
stored check answers, the grader's checkpoint mode) load it from the notebook with
:func:`load_definitions` instead of keeping a copy of it in a ``.py`` file, so there is no second
copy to drift apart or to leak to students.
"""

from __future__ import annotations

import ast
import os
import sys
import types
from pathlib import Path

import nbformat

# Top-level statements kept by load_definitions: imports, functions and classes (no training, no setup).
_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _is_literal_assignment(node: ast.stmt) -> bool:
    """``SEED = 0``, ``PROFILE = None``: parameters that definitions use as defaults."""
    if not isinstance(node, ast.Assign) or not all(isinstance(t, ast.Name) for t in node.targets):
        return False
    try:
        ast.literal_eval(node.value)
    except ValueError:
        return False
    return True


def code_cells(path: str | os.PathLike) -> list[tuple[int, str]]:
    """``(cell index, source)`` of every code cell, with IPython magics and shell lines (``%``, ``!``) removed."""
    nb = nbformat.read(path, as_version=4)
    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            lines = [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))]
            cells.append((index, "\n".join(lines)))
    return cells


def load_definitions(path: str | os.PathLike, module_name: str | None = None,
                     extra_globals: dict | None = None) -> types.ModuleType:
    """Execute the top-level imports, functions, classes and literal assignments (``SEED = 0``) of a
    notebook's code cells into a module.

    Nothing else runs: no setup, no data loading, no training, no checks. Functions that read
    notebook globals (``cfg``, ``device``, ``G``...) find them once the caller sets them on the module.

    Args:
        path: the notebook (a solution notebook, a template or a submission).
        module_name: the name the module is registered under in ``sys.modules`` (dataclasses look
            their module up there); default ``ganlab_nb_<notebook stem>``.
        extra_globals: names set on the module before the cells run.

    Returns:
        The module; ``module.Generator``, ``module.d_loss_bce``... are the notebook's own objects.

    Raises:
        SyntaxError: a code cell does not parse; the message names the notebook and the cell.
    """
    path = Path(path)
    name = module_name or f"ganlab_nb_{path.stem}"
    module = types.ModuleType(name)
    module.__dict__.update(extra_globals or {})
    sys.modules[name] = module
    for index, source in code_cells(path):
        where = f"{path.name} cell {index}"
        tree = ast.parse(source, filename=where)
        tree.body = [node for node in tree.body if isinstance(node, _DEFINITIONS) or _is_literal_assignment(node)]
        exec(compile(tree, where, "exec"), module.__dict__)  # noqa: S102 - a notebook the caller chose to load
    return module
