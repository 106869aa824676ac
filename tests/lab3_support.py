"""Support for the Lab 3 (malaria) tests: the real sample, and the notebook's own code.

Not a test module (pytest collects ``test_*.py`` only).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import pytest

from helpers.course.notebook_code import load_definitions
from helpers.env import settings

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "dcgan_malaria.ipynb"


def sample_root() -> Path:
    """``$GANLAB_DATA/malaria_sample`` (a relative GANLAB_DATA is taken from the repository root).

    The real sample is part of the test data: when it is missing the calling test fails (it is
    never skipped), with a message that says where it was looked for.
    """
    root = settings().data or Path("../shared/data")
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
    """The imports, functions and classes the notebook defines (``helpers.course.notebook_code``).

    Shared between callers: do not modify it.
    """
    return vars(load_definitions(path, module_name="dcgan_malaria_notebook"))
