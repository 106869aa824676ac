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
