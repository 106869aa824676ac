"""The Colab route, offline: a student's released notebook in a fresh kernel that believes it is in Colab.

The course repository is a bare git repository the release builder's ``--git`` builds were pushed to
(tags v0.9.0, v1.0.0, v1.1.0); ``google.colab`` is a small package on the kernel's PYTHONPATH, imported when
the kernel starts (as in Colab), whose ``drive.mount`` creates ``<mount>/MyDrive`` under a temporary
GANLAB_DRIVE_MOUNT. The kernel starts in an empty folder, like /content.
"""

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from helpers.course.release import MARKER, main
from helpers.course.setup_cell import SETUP_CELL_INDEX, render_setup_cell

from conftest import REPO_ROOT
from release_support import (assert_stopped_at_first_todo, error_cell, execute, first_stub_cell, git, kernel_environment,
                             outside, printed)

NOTEBOOK = "lab8_vanilla.ipynb"
FAKE_DRIVE = '''"""A stand-in for google.colab.drive (tests): mount makes <mount>/MyDrive; flush_and_unmount leaves a mark."""
from pathlib import Path

_mounted = []


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    (Path(mountpoint) / "MyDrive").mkdir(parents=True, exist_ok=True)
    _mounted.append(Path(mountpoint))
    print(f"Mounted at {mountpoint}")


def flush_and_unmount(timeout_ms=24 * 3600 * 1000):
    for mountpoint in _mounted:
        (mountpoint / "flushed-and-unmounted").touch()
'''


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> dict:
    """The published course repository with three releases, and the v1.0.0 notebooks a student opened."""
    tmp = tmp_path_factory.mktemp("course")
    bare = tmp / "gan-lab.git"
    git("init", "--quiet", "--bare", str(bare))
    url = bare.as_uri()
    out = tmp / "release"
    student = tmp / "student-v1.0.0"
    for tag in ("v0.9.0", "v1.0.0", "v1.1.0"):
        assert main(["build", str(out), "--url", url, "--tag", tag, "--git"]) == 0
        git("-C", str(out), "push", "--quiet", "--follow-tags", url, "main")
        if tag == "v1.0.0":
            shutil.copytree(out, student, ignore=shutil.ignore_patterns(".git"))
    assert git("ls-remote", "--tags", url).count("refs/tags/v") >= 3
    fake = tmp / "fake-colab"
    (fake / "google" / "colab").mkdir(parents=True)  # google/ stays a namespace package
    (fake / "google" / "colab" / "__init__.py").write_text('"""A stand-in for Colab\'s package (tests)."""\nfrom . import drive\n')
    (fake / "google" / "colab" / "drive.py").write_text(FAKE_DRIVE)
    startup = tmp / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab  # Colab's kernel has it imported\n")
    return {"url": url, "student": student, "fake": fake, "ipython": tmp / "ipython"}


@pytest.fixture
def colab_kernel(course, tmp_path, monkeypatch) -> dict:
    """An empty working folder (/content), Drive under tmp_path, the fake google.colab in the kernel."""
    kernel_environment(monkeypatch)
    monkeypatch.setenv("PYTHONPATH", str(course["fake"]))
    monkeypatch.setenv("IPYTHONDIR", str(course["ipython"]))
    monkeypatch.setenv("GANLAB_DRIVE_MOUNT", str(tmp_path / "drive"))
    content = tmp_path / "content"
    content.mkdir()
    return {"content": content, "drive": tmp_path / "drive"}


PROBE = ("import json, sys, helpers, google.colab\n"
         "print('PROBE-RESULT ' + json.dumps({'helpers': helpers.__file__, 'path': sys.path}))")


def test_the_released_notebook_clones_its_tag_keeps_an_old_clone_and_runs_from_the_clone(course, colab_kernel):
    content = colab_kernel["content"]
    # a clone of an older release from an earlier session, holding a fallback checkpoint of the student's
    git("clone", "--quiet", "--branch", "v0.9.0", course["url"], str(content / "gan-lab"))
    kept = content / "gan-lab" / "checkpoints" / "vanilla" / "last.pt"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"the student's checkpoint")

    nb = nbformat.read(course["student"] / NOTEBOOK, as_version=4)
    nb.cells.insert(first_stub_cell(nb), nbformat.v4.new_code_cell(PROBE))
    err = execute(nb, cwd=content)
    assert_stopped_at_first_todo(nb, err)

    clone, aside = content / "gan-lab", content / "gan-lab-v0.9.0"
    setup_out = printed(nb.cells[SETUP_CELL_INDEX + 1])  # the badge cell comes first in a released notebook
    assert f"Moved the course code of release v0.9.0 aside to {aside}" in setup_out, setup_out
    assert f"Course code: release v1.0.0 in {clone}" in setup_out
    assert "a newer release of the course code exists: v1.1.0 (this notebook uses v1.0.0)" in setup_out
    assert 'set REPO_TAG = "v1.1.0" at the top of this cell' in setup_out
    assert aside.is_dir() and (aside / "checkpoints" / "vanilla" / "last.pt").read_bytes() == b"the student's checkpoint"
    assert 'REPO_TAG = "v1.0.0"' in (clone / MARKER).read_text()
    assert git("-C", str(clone), "describe", "--tags").strip() == "v1.0.0"

    probe = next(c for c in nb.cells if c.source == PROBE)
    result = json.loads(printed(probe).split("PROBE-RESULT ", 1)[1])
    assert result["helpers"] == str(clone / "helpers" / "__init__.py")
    assert all(outside(Path(p), REPO_ROOT) for p in result["path"] if p), "the kernel could import from this repository"
    # setup_lab mounted the (fake) Drive and put the checkpoints there; figures went to the clone
    assert (colab_kernel["drive"] / "MyDrive" / "gan-lab" / "vanilla-smoke").is_dir()
    assert (clone / "outputs" / "vanilla-smoke").is_dir()


def test_a_missing_repository_stops_the_notebook_with_what_was_tried_and_what_to_do(course, colab_kernel, tmp_path):
    nb = nbformat.read(course["student"] / NOTEBOOK, as_version=4)
    setup = nb.cells[SETUP_CELL_INDEX + 1]
    missing = (tmp_path / "no-such-repository.git").as_uri()
    setup.source = render_setup_cell(missing, "v1.0.0")  # what the builder writes for that URL
    err = execute(nb, cwd=colab_kernel["content"])
    assert err is not None and err.ename == "SetupFailed", str(err)[-2000:] if err else "the notebook ran on"
    assert error_cell(nb) == SETUP_CELL_INDEX + 1
    (error,) = [o for o in setup.outputs if o.get("output_type") == "error"]
    shown = "\n".join(error["traceback"])
    assert len(error["traceback"]) == 1 and shown.startswith("SETUP FAILED: could not fetch the course code."), shown
    assert "Traceback" not in shown and "File " not in shown, "a bare traceback was shown"
    assert f"tried: git clone --quiet --depth 1 --branch v1.0.0 {missing}" in shown
    assert "does not appear to be a git repository" in shown  # git's own words
    assert "What to do: check with your instructor that REPO_URL and REPO_TAG" in shown
    ran = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("execution_count") and i > SETUP_CELL_INDEX + 1]
    assert ran == [], f"cells {ran} ran after the setup cell failed"
    assert not (colab_kernel["content"] / "gan-lab").exists()
