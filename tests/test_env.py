import re
import sys

import nbformat
import pytest
import torch

from helpers import env as env_mod
from helpers.env import by_profile, resolve_profile, seed_everything, setup_lab, shown_path
from helpers.course.release import REPO_TAG, REPO_URL
from helpers.sampling import check_count, seeded_noise

from conftest import REPO_ROOT


def test_profile_resolution(monkeypatch):
    monkeypatch.delenv("GANLAB_PROFILE", raising=False)
    assert resolve_profile(device=torch.device("cpu")) == "quick"
    assert resolve_profile(device=torch.device("cuda")) == "full"
    monkeypatch.setenv("GANLAB_PROFILE", "smoke")
    assert resolve_profile() == "smoke"
    assert resolve_profile("FULL") == "full"
    with pytest.raises(ValueError, match="smoke, quick, full"):
        resolve_profile("fast")
    assert by_profile("quick", smoke=1, quick=2, full=3) == 2


def test_setup_lab_folders_depend_on_profile(lab_dirs):
    env = setup_lab("vanilla", profile="smoke", device="cpu")
    assert env.path_to_checkpoint == lab_dirs["checkpoints"].resolve() / "vanilla-smoke"
    assert env.output_dir == lab_dirs["outputs"].resolve() / "vanilla-smoke"
    assert env.path_to_checkpoint.is_dir() and env.output_dir.is_dir()
    full = setup_lab("vanilla", profile="full", device="cpu")
    assert full.path_to_checkpoint.name == "vanilla"


def test_shown_path_is_relative_inside_the_working_directory(tmp_path, monkeypatch):
    """Printed paths carry no machine's absolute prefix, except where they lie elsewhere (Drive)."""
    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "checkpoints" / "vanilla" / "last.pt") == "checkpoints/vanilla/last.pt"
    assert shown_path(tmp_path) == "."
    outside = tmp_path.parent / "elsewhere" / "best.pt"
    assert shown_path(outside) == str(outside)


def test_checkpoint_root_in_colab_is_drive(monkeypatch):
    monkeypatch.delenv("GANLAB_CHECKPOINTS", raising=False)
    assert env_mod.checkpoint_root(colab=True) == env_mod.DRIVE_ROOT
    assert env_mod.checkpoint_root(colab=False).name == "checkpoints"


def test_in_colab_also_in_a_shell_command_of_a_colab_cell(monkeypatch):
    """`!python -m helpers.course.share_checkpoints` runs in a subprocess without google.colab imported."""
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert not env_mod.in_colab()
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20261101-060000_RC00")
    assert env_mod.in_colab()


def test_seed_gives_same_samples_on_cpu():
    seed_everything(3)
    a = torch.randn(5)
    seed_everything(3)
    assert torch.equal(a, torch.randn(5))
    assert torch.equal(seeded_noise(4, 10, 9, "cpu"), seeded_noise(4, 10, 9, "cpu"))


def test_check_count():
    assert check_count(3) == 3
    for bad in (0, -2):
        with pytest.raises(ValueError, match=str(bad)):
            check_count(bad)
    for bad in (2.0, "2", None, True):
        with pytest.raises(TypeError, match=re.escape(repr(bad))):
            check_count(bad)


LAB_NOTEBOOKS = sorted(p.name for p in REPO_ROOT.glob("*.ipynb"))


def test_the_vanilla_lab_is_there():
    assert "lab8_vanilla.ipynb" in LAB_NOTEBOOKS


@pytest.mark.parametrize("name", LAB_NOTEBOOKS)
def test_bootstrap_cell_pins_the_release_of_helpers_release(name):
    first_code = next(c for c in nbformat.read(REPO_ROOT / name, as_version=4).cells if c.cell_type == "code")
    assert f'REPO_URL = "{REPO_URL}"' in first_code.source
    assert f'REPO_TAG = "{REPO_TAG}"' in first_code.source
