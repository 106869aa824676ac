"""Test settings: offline data from ../shared/data (or $GANLAB_DATA), scratch folders per test."""

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from helpers.env import settings  # noqa: E402  (the repository root is importable from here on)

if settings().data is None and (REPO_ROOT.parent / "shared" / "data").is_dir():
    os.environ["GANLAB_DATA"] = str(REPO_ROOT.parent / "shared" / "data")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GANLAB_OFFLINE", "1")  # tests never reach for the network


@pytest.fixture
def data_root() -> Path:
    """The folder that holds MNIST/raw and FashionMNIST/raw (read-only in CI)."""
    root = settings().data
    if root is None or not (root / "MNIST" / "raw").is_dir():
        pytest.fail(f"GANLAB_DATA={root} has no MNIST/raw; see data_README.md")
    return root


@pytest.fixture
def lab_dirs(tmp_path, monkeypatch) -> dict:
    """Checkpoint and output folders in tmp_path, so no test touches a real run."""
    dirs = {"checkpoints": tmp_path / "checkpoints", "outputs": tmp_path / "outputs"}
    monkeypatch.setenv("GANLAB_CHECKPOINTS", str(dirs["checkpoints"]))
    monkeypatch.setenv("GANLAB_OUTPUT", str(dirs["outputs"]))
    return dirs


def check_fails(check, *args, match: str, **kwargs) -> str:
    """Call ``check``; it must raise ``CheckFailed`` whose message holds ``match`` and a hint. Returns the message."""
    from helpers.checks.common import CheckFailed

    with pytest.raises(CheckFailed) as info:
        check(*args, **kwargs)
    msg = str(info.value)
    assert match in msg, msg
    assert "Hint:" in msg, msg
    return msg


def notebook_mutant(path: Path, module, name: str, *edits: tuple[str, str], once: bool = False,
                    keep_name: bool = False):
    """The notebook's class or function ``name`` with each ``(old, new)`` edit made in its source: a typical mistake,
    built from the solution's own code so no copy of it lives in the tests.

    Args:
        path: the solution notebook.
        module: that notebook loaded with ``load_definitions``: the mutant reads the same globals (G, D, cfg...).
        name: the top-level class or function to edit.
        edits: ``(old, new)`` texts; an ``old`` that is no longer in the code fails the test rather than testing nothing.
        once: each ``old`` must occur exactly once (else: at least once; every occurrence is replaced).
        keep_name: define the mutant under its own name in a copy of the module's globals (for checks that look
            at the class's name); else as ``<name>__mutant`` in the module itself.
    """
    import ast

    from helpers.course.notebook_code import code_cells

    for _, source in code_cells(path):
        for node in ast.parse(source).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
                text = ast.get_source_segment(source, node)
                for old, new in edits:
                    found = text.count(old) == 1 if once else old in text
                    assert found, f"{path.name}: {name} no longer contains {old!r}{' once' if once else ''}; update this test"
                    text = text.replace(old, new)
                if keep_name:
                    namespace = dict(module.__dict__)
                else:
                    namespace = module.__dict__
                    keyword = "class" if isinstance(node, ast.ClassDef) else "def"
                    text = text.replace(f"{keyword} {name}", f"{keyword} {name}__mutant", 1)
                exec(compile(text, f"<mutant of {path.name}:{name}>", "exec"), namespace)  # noqa: S102
                return namespace[name if keep_name else f"{name}__mutant"]
    raise AssertionError(f"{path.name} defines no {name}")
