"""Support for the Lab 3 (malaria) tests: the real sample, and the notebook's own code.

Not a test module (pytest collects ``test_*.py`` only).
"""

from __future__ import annotations

import ast
import os
import sys
import types
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "dcgan_malaria.ipynb"


def sample_root() -> Path:
    """``$GANLAB_DATA/malaria_sample`` (a relative GANLAB_DATA is taken from the repository root).

    The real sample is part of the test data: when it is missing the calling test fails (it is
    never skipped), with a message that says where it was looked for.
    """
    root = Path(os.environ.get("GANLAB_DATA") or "../shared/data")
    root = root if root.is_absolute() else REPO / root
    sample = root / "malaria_sample"
    if not (sample / "iml_malaria").is_dir():
        pytest.fail(
            f"The real malaria sample is missing: no {sample / 'iml_malaria'}. Set GANLAB_DATA to the shared "
            f"data folder that holds malaria_sample/ (../shared/data on the course machines); see data_README.md.",
            pytrace=False,
        )
    return sample


@lru_cache(maxsize=None)
def notebook_namespace(path: str | os.PathLike = NOTEBOOK) -> dict:
    """The imports, functions and classes the notebook defines, executed into one namespace.

    Only top-level ``import``, ``def`` and ``class`` statements of the code cells run (no
    training, no setup, no checks), so the student code of the notebook can be tested on its
    own: ``ns = notebook_namespace(); ns["lsgan_d_loss"](score_real, score_fake)``.

    Returns:
        The namespace (shared between callers: do not modify it).
    """
    nb = nbformat.read(path, as_version=4)
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
    module = types.ModuleType("dcgan_malaria_notebook")  # registered: dataclasses look their module up
    sys.modules[module.__name__] = module
    namespace = module.__dict__
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        tree = ast.parse(source, filename=f"{Path(path).name} cell {index}")
        tree.body = [node for node in tree.body if isinstance(node, keep)]
        exec(compile(tree, f"{Path(path).name} cell {index}", "exec"), namespace)  # noqa: S102 - our own notebook
    return namespace
