import dataclasses
import re
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from helpers import env as env_mod
from helpers.env import by_profile, finish_lab, resolve_profile, seed_everything, setup_lab, shown_path
from helpers.course.labs import LABS
from helpers.course.release import REPO_TAG, REPO_URL
from helpers.course.setup_cell import SETUP_CELL_INDEX, render_setup_cell
from helpers.sampling import check_count, seeded_noise

from colab_support import fake_colab as _fake_colab
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
    assert env_mod.checkpoint_root(colab=True) == env_mod.DRIVE_MOUNT / "MyDrive" / "gan-lab" == env_mod.drive_root()
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


# The notebooks at the root and every lab's solution notebook, wherever it sits (extra/fc_gan.ipynb).
LAB_NOTEBOOKS = sorted({p.name for p in REPO_ROOT.glob("*.ipynb")} | {lab.notebook for lab in LABS})


def test_the_vanilla_lab_is_there():
    assert "lab8_vanilla.ipynb" in LAB_NOTEBOOKS


@pytest.mark.parametrize("name", LAB_NOTEBOOKS)
def test_setup_cell_is_the_canonical_one_pinned_in_helpers_release(name):
    cell = nbformat.read(REPO_ROOT / name, as_version=4).cells[SETUP_CELL_INDEX]
    assert cell.source == render_setup_cell(REPO_URL, REPO_TAG), (
        f"{name}: cell {SETUP_CELL_INDEX} is not the setup cell of helpers/course/setup_cell.py for {REPO_URL} at "
        f"{REPO_TAG}; run `python -m helpers.course.setup_cell` and regenerate the templates")


def test_settings_read_the_environment_at_call_time(monkeypatch, tmp_path):
    for var in env_mod.ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    assert env_mod.settings() == env_mod.Settings()
    monkeypatch.setenv("GANLAB_DATA", str(tmp_path))
    monkeypatch.setenv("GANLAB_OUTPUT", "")             # empty counts as unset
    monkeypatch.setenv("GANLAB_OFFLINE", "True")
    monkeypatch.setenv("GANLAB_PROFILE", " smoke ")
    got = env_mod.settings()
    assert got.data == tmp_path and got.output is None and got.offline and got.profile == "smoke"
    # the grader reads a kernel's environment, not its own
    assert env_mod.settings({"GANLAB_CHECKPOINTS": "~/ck"}).checkpoints == Path("~/ck").expanduser()
    assert env_mod.settings({"GANLAB_OFFLINE": "0"}).offline is False


def test_readme_lists_every_variable():
    readme = (REPO_ROOT / "README.md").read_text()
    table = readme[readme.index("## Where things go"):]
    table = table[:table.index("\n## ")]
    assert set(env_mod.ENV_VARS) == {f.name for f in dataclasses.fields(env_mod.Settings)}
    for var in env_mod.ENV_VARS.values():
        assert f"`{var}" in table, f"README's 'Where things go' does not list {var}"
    assert set(re.findall(r"GANLAB_[A-Z_]+", readme)) <= set(env_mod.ENV_VARS.values())


# A read of a GANLAB_ variable by name: environ.get, os.getenv, a dict's .get, or environ[...] not followed by
# an assignment (writes such as monkeypatch.setenv or a kernel's environment built for a subprocess are fine).
_READ = re.compile(r"""(?:\.get|getenv)\(\s*["']GANLAB_|environ\[\s*["']GANLAB_[A-Z_]*["']\s*\](?!\s*=[^=])""")
# Reads in files owned by other work in progress, each to become a helpers.env.settings() call.
_NOT_YET_CONVERTED: set[str] = set()


def test_only_helpers_env_reads_ganlab_variables():
    sources = {p: p.read_text() for p in [*REPO_ROOT.glob("*.py"), *REPO_ROOT.glob("helpers/**/*.py"),
                                          *REPO_ROOT.glob("tests/*.py")]}
    for nb in [*REPO_ROOT.glob("*.ipynb"), *(lab.notebook_path() for lab in LABS)]:
        sources[nb] = "\n".join(c.source for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code")
    readers = {str(p.relative_to(REPO_ROOT)) for p, text in sources.items() if _READ.search(text)}
    assert readers - _NOT_YET_CONVERTED == set(), "read them with helpers.env.settings()"


@pytest.fixture
def colab_runtime(tmp_path, monkeypatch):
    """A fresh folder as the working directory, Drive mounted (if at all) under tmp_path, no overrides."""
    monkeypatch.chdir(tmp_path)
    for var in ("GANLAB_CHECKPOINTS", "GANLAB_OUTPUT", "GANLAB_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GANLAB_DRIVE_MOUNT", str(tmp_path / "drive"))
    return tmp_path


@pytest.mark.parametrize("error", [ValueError("mount failed"), TimeoutError("Timed out waiting for authorization")])
def test_a_drive_mount_that_fails_falls_back_to_the_runtime_disk_with_a_warning(colab_runtime, monkeypatch, capsys, error):
    def fail(path):
        raise error

    calls = _fake_colab(monkeypatch, fail)
    env = setup_lab("vanilla", profile="smoke", device="cpu")
    assert calls and calls[0][1]["timeout_ms"] > 0
    assert env.path_to_checkpoint == (colab_runtime / "checkpoints" / "vanilla-smoke").resolve()
    assert env.path_to_checkpoint.is_dir() and env.colab
    out = capsys.readouterr().out
    assert "WARNING: Google Drive could not be mounted" in out and str(error) in out
    assert "LOST when the runtime" in out and "path_to_checkpoint" in out
    assert not (colab_runtime / "drive").exists()  # nothing written where Drive should be


def test_a_drive_that_mounts_holds_the_checkpoints(colab_runtime, monkeypatch, capsys):
    calls = _fake_colab(monkeypatch, lambda path: (path / "MyDrive").mkdir(parents=True))
    env = setup_lab("cwgan", profile="smoke", device="cpu")
    assert env.path_to_checkpoint == colab_runtime / "drive" / "MyDrive" / "gan-lab" / "cwgan-smoke"
    assert len(calls) == 1 and "WARNING" not in capsys.readouterr().out
    setup_lab("cwgan", profile="smoke", device="cpu")  # already mounted: not mounted again
    assert len(calls) == 1


def test_a_mount_that_returns_without_a_drive_is_a_failure(colab_runtime, monkeypatch, capsys):
    _fake_colab(monkeypatch, lambda path: None)
    env = setup_lab("vanilla", profile="smoke", device="cpu")
    assert env.path_to_checkpoint.parent == (colab_runtime / "checkpoints").resolve()
    assert "does not exist" in capsys.readouterr().out


def test_checkpoints_set_elsewhere_never_mount_drive(colab_runtime, monkeypatch):
    calls = _fake_colab(monkeypatch, lambda path: pytest.fail("Drive was mounted for checkpoints that are not on it"))
    monkeypatch.setenv("GANLAB_CHECKPOINTS", str(colab_runtime / "mine"))
    assert setup_lab("vanilla", profile="smoke", device="cpu").path_to_checkpoint.parent == colab_runtime / "mine"
    assert setup_lab("vanilla", profile="smoke", device="cpu", path_to_checkpoint="kept").path_to_checkpoint.name == "kept"
    assert calls == []


def test_a_checkpoint_folder_on_a_shared_drive_mounts_drive_first(colab_runtime, monkeypatch, capsys):
    def mount(path):
        (path / "MyDrive").mkdir(parents=True)
        (path / "Shareddrives" / "GAN team").mkdir(parents=True)

    calls = _fake_colab(monkeypatch, mount)
    chosen = colab_runtime / "drive" / "Shareddrives" / "GAN team" / "gan-lab" / "vanilla"
    env = setup_lab("vanilla", profile="smoke", device="cpu", path_to_checkpoint=str(chosen))
    assert len(calls) == 1 and env.path_to_checkpoint == chosen and chosen.is_dir()
    assert "WARNING" not in capsys.readouterr().out


def test_a_checkpoint_folder_on_a_shared_drive_that_is_not_there_is_refused(colab_runtime, monkeypatch):
    def mount(path):
        (path / "MyDrive").mkdir(parents=True)
        (path / "Shareddrives" / "GAN team").mkdir(parents=True)

    _fake_colab(monkeypatch, mount)
    typo = colab_runtime / "drive" / "Shareddrives" / "GAN taem" / "vanilla"
    with pytest.raises(FileNotFoundError, match=r"GAN taem does not exist.*CHECKPOINT_DIR.*yours: GAN team"):
        setup_lab("vanilla", profile="smoke", device="cpu", path_to_checkpoint=str(typo))
    assert not typo.parent.exists()  # nothing made inside the mount point


def test_a_checkpoint_folder_on_drive_falls_back_with_a_warning_when_the_mount_fails(colab_runtime, monkeypatch, capsys):
    def fail(path):
        raise TimeoutError("Timed out waiting for authorization")

    _fake_colab(monkeypatch, fail)
    chosen = colab_runtime / "drive" / "MyDrive" / "course" / "vanilla"
    env = setup_lab("vanilla", profile="smoke", device="cpu", path_to_checkpoint=str(chosen))
    assert env.path_to_checkpoint == (colab_runtime / "checkpoints" / "vanilla").resolve()
    assert "WARNING: Google Drive could not be mounted" in capsys.readouterr().out
    assert not (colab_runtime / "drive").exists()


def test_finish_lab_flushes_and_unmounts_drive_only_in_colab_with_drive_mounted(colab_runtime, monkeypatch, capsys):
    _fake_colab(monkeypatch, lambda path: (path / "MyDrive").mkdir(parents=True))
    flushed = []
    sys.modules["google.colab"].drive.flush_and_unmount = lambda **kwargs: flushed.append(kwargs)
    env = setup_lab("vanilla", profile="smoke", device="cpu")
    assert env.colab and env.path_to_checkpoint.is_relative_to(colab_runtime / "drive" / "MyDrive")
    capsys.readouterr()
    finish_lab(env)
    assert flushed == [{}] and "Google Drive flushed and unmounted" in capsys.readouterr().out

    finish_lab(dataclasses.replace(env, colab=False))  # the same run outside Colab: nothing to flush
    assert len(flushed) == 1 and "Nothing to do here (not in Colab)" in capsys.readouterr().out

    (colab_runtime / "drive" / "MyDrive").rename(colab_runtime / "unmounted")  # Colab, Drive not mounted
    finish_lab(env)
    assert len(flushed) == 1 and "Google Drive is not mounted" in capsys.readouterr().out


def test_finish_lab_says_when_drive_could_not_be_flushed(colab_runtime, monkeypatch, capsys):
    _fake_colab(monkeypatch, lambda path: (path / "MyDrive").mkdir(parents=True))

    def fail(**kwargs):
        raise ValueError("flush timed out")

    sys.modules["google.colab"].drive.flush_and_unmount = fail
    env = setup_lab("cwgan", profile="smoke", device="cpu")
    finish_lab(env)  # the lab's last cell does not fail: it warns
    out = capsys.readouterr().out
    assert "WARNING: Google Drive could not be flushed" in out and "flush timed out" in out
