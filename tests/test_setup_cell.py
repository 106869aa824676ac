"""The setup cell (helpers/course/setup_cell.py): local and Colab routes, run as plain Python in a subprocess.

Each run executes the rendered cell with exec() in a fresh interpreter (a notebook kernel runs it the same way;
tests/test_colab_route.py runs it in real kernels), with ``google.colab`` faked by a module in sys.modules
and a small git repository as the course repository, so nothing reaches the network.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers.course.labs import LABS
from helpers.course.release import REPO_TAG, REPO_URL
from helpers.course.setup_cell import (SETUP_CELL_INDEX, SetupCellError, main, render_setup_cell, setup_cell_drift,
                                       sync_setup_cells)

from conftest import REPO_ROOT
from release_support import git

LAB_NOTEBOOKS = [lab.notebook for lab in LABS]  # every lab, extra/ ones too

RUNNER = r'''
import importlib, json, os, sys, types
if os.environ.get("FAKE_COLAB") == "1":
    sys.modules["google.colab"] = types.ModuleType("google.colab")  # what Colab's kernel has imported
ns, results = {"__name__": "__main__"}, []
for step in sys.argv[1:]:
    kind, _, arg = step.partition(":")
    if kind == "cell":
        try:
            exec(compile(open(arg).read(), "<setup cell>", "exec"), ns)
            status, message = "ok", ""
        except BaseException as err:
            status = type(err).__name__
            message = "\n".join(err._render_traceback_()) if hasattr(err, "_render_traceback_") else repr(err)
        results.append({"status": status, "message": message, "cwd": os.getcwd(), "path0": sys.path[0]})
    elif kind == "import":  # where helpers comes from, and the tag of its marker
        results.append({"helpers": importlib.import_module("helpers").__file__,
                        "tag": getattr(importlib.import_module("helpers._release"), "REPO_TAG", None)})
print("RESULTS " + json.dumps(results))
'''


def run_cells(tmp: Path, cwd: Path, *steps: str, colab: bool = False, pythonpath: Path | None = None):
    """Run ``steps`` ("cell:<file>", "import") in one fresh interpreter started in ``cwd``.

    Returns:
        (the results, one per step; everything printed before them).
    """
    runner = tmp / "runner.py"
    runner.write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FAKE_COLAB")}
    env.update({"FAKE_COLAB": "1" if colab else "0", "GIT_CONFIG_NOSYSTEM": "1"})
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    run = subprocess.run([sys.executable, "-B", str(runner), *steps], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "RESULTS " in run.stdout, f"the runner failed:\n{run.stdout}\n{run.stderr}"
    printed, _, tail = run.stdout.rpartition("RESULTS ")
    return json.loads(tail), printed


def cell_file(tmp: Path, url: str, tag: str, name: str = "cell.py") -> str:
    path = tmp / name
    path.write_text(render_setup_cell(url, tag))
    return f"cell:{path}"


def make_origin(tmp: Path, tags: list[str], marker_of: dict[str, str] | None = None) -> str:
    """A bare repository with one commit per tag (annotated), each holding helpers/ with that tag's marker.

    ``marker_of`` gives a tag a marker naming another tag (a release built wrongly). Returns its file:// URL.
    """
    work = tmp / "origin-work"
    (work / "helpers").mkdir(parents=True)
    git("init", "--quiet", "--initial-branch", "main", cwd=work)
    (work / "helpers" / "__init__.py").write_text('"""A stand-in for the course helpers."""\n')
    for tag in tags:
        marker = (marker_of or {}).get(tag, tag)
        (work / "helpers" / "_release.py").write_text(f'REPO_URL = "x"\nREPO_TAG = "{marker}"\n')
        git("add", ".", cwd=work)
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "--allow-empty", "-m", tag, cwd=work)
        git("-c", "user.name=t", "-c", "user.email=t@t", "tag", "-a", tag, "-m", tag, cwd=work)
    bare = tmp / "origin.git"
    git("clone", "--quiet", "--bare", str(work), str(bare))
    return bare.as_uri()


def released_tag(root: Path) -> str:
    return (root / "helpers" / "_release.py").read_text().split('REPO_TAG = "')[1].split('"')[0]


# ----------------------------------------------------------------------------- the cell itself
def test_the_cell_is_standard_library_python_with_the_values_of_the_one_place():
    src = render_setup_cell()
    assert f'REPO_URL = "{REPO_URL}"' in src and f'REPO_TAG = "{REPO_TAG}"' in src
    assert render_setup_cell("https://github.com/me/x.git", "v9.9.9").count("v9.9.9") == 1
    tree = ast.parse(src)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    # helpers only as the fallback for an installed copy, inside the branch that has no folder
    assert imported - {"helpers"} <= set(sys.stdlib_module_names), imported
    assert "Keep URL and tag in step" not in src and "helpers.course" not in src
    for bad in ('v1"; import os', "v1 2", "", "a\\b"):
        with pytest.raises(ValueError, match="cannot go into the setup cell"):
            render_setup_cell(REPO_URL, bad)


# ----------------------------------------------------------------------------- locally
def test_locally_a_notebook_in_a_subfolder_works_from_the_repository_root(tmp_path):
    repo = tmp_path / "course"
    (repo / "helpers").mkdir(parents=True)
    (repo / "helpers" / "__init__.py").write_text("")
    (repo / "helpers" / "_release.py").write_text("")
    deep = repo / "labs" / "part2"
    deep.mkdir(parents=True)
    (result, imported), printed = run_cells(tmp_path, deep, cell_file(tmp_path, REPO_URL, REPO_TAG), "import")
    assert result["status"] == "ok", result["message"]
    assert result["cwd"] == str(repo) and result["path0"] == str(repo)
    assert imported["helpers"] == str(repo / "helpers" / "__init__.py")
    assert printed == ""  # a working copy without a release marker: nothing to say


def test_locally_a_release_of_another_tag_is_named_but_used(tmp_path):
    repo = tmp_path / "gan-lab"
    (repo / "helpers").mkdir(parents=True)
    (repo / "helpers" / "__init__.py").write_text("")
    (repo / "helpers" / "_release.py").write_text('REPO_URL = "x"\nREPO_TAG = "v1.1.0"\n')
    (result,), printed = run_cells(tmp_path, repo, cell_file(tmp_path, REPO_URL, "v1.0.0"))
    assert result["status"] == "ok" and result["cwd"] == str(repo)
    assert "holds release v1.1.0" in printed and "git checkout v1.0.0" in printed


def test_without_a_helpers_folder_the_cell_stops_with_what_to_do(tmp_path):
    empty = tmp_path / "somewhere"
    empty.mkdir()
    (result,), _ = run_cells(tmp_path, empty, cell_file(tmp_path, REPO_URL, REPO_TAG))
    assert result["status"] == "SetupFailed"
    assert result["message"].startswith(f"SETUP FAILED: no helpers/ folder in {empty}")
    assert f"git clone --branch {REPO_TAG} {REPO_URL}" in result["message"] and "Traceback" not in result["message"]


def test_an_installed_helpers_is_used_where_there_is_no_folder(tmp_path):
    """The grader runs the cell in a scratch folder with helpers imported; pip install -e . is the same case."""
    site = tmp_path / "site"
    (site / "helpers").mkdir(parents=True)
    (site / "helpers" / "__init__.py").write_text("")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (result,), printed = run_cells(tmp_path, scratch, cell_file(tmp_path, REPO_URL, REPO_TAG), pythonpath=site)
    assert result["status"] == "ok" and result["cwd"] == str(scratch), result["message"]


# ----------------------------------------------------------------------------- in Colab
def test_colab_clones_the_tag_works_there_and_a_second_run_reuses_it(tmp_path):
    url = make_origin(tmp_path, ["v1.0.0"])
    content = tmp_path / "content"
    content.mkdir()
    cell = cell_file(tmp_path, url, "v1.0.0")
    (first, second, imported), printed = run_cells(tmp_path, content, cell, cell, "import", colab=True)
    clone = content / "gan-lab"
    assert first["status"] == "ok", first["message"]
    assert first["cwd"] == str(clone) and first["path0"] == str(clone) and released_tag(clone) == "v1.0.0"
    assert second["status"] == "ok" and second["cwd"] == str(clone)  # run again from inside the clone
    assert imported["helpers"] == str(clone / "helpers" / "__init__.py")
    assert printed.count("Course code: release v1.0.0") == 2 and "newer release" not in printed
    # Runtime > Restart: a new process in /content finds the clone; the repository is not even needed now
    Path(url.removeprefix("file://")).rename(tmp_path / "gone.git")
    (again,), printed = run_cells(tmp_path, content, cell, colab=True)
    assert again["status"] == "ok" and again["cwd"] == str(clone), again["message"]
    assert "newer release" not in printed  # ls-remote failed: silent


def test_colab_moves_a_clone_of_another_tag_aside_and_keeps_its_files(tmp_path):
    url = make_origin(tmp_path, ["v0.9.0", "v1.0.0"])
    content = tmp_path / "content"
    git("clone", "--quiet", "--branch", "v0.9.0", url, str(content / "gan-lab"))
    student_file = content / "gan-lab" / "checkpoints" / "vanilla" / "last.pt"
    student_file.parent.mkdir(parents=True)
    student_file.write_bytes(b"a student's fallback checkpoint")
    (content / "gan-lab-v0.9.0").mkdir()  # an earlier move aside: never overwritten
    (result,), printed = run_cells(tmp_path, content, cell_file(tmp_path, url, "v1.0.0"), colab=True)
    assert result["status"] == "ok", result["message"]
    aside = content / "gan-lab-v0.9.0-old"
    assert released_tag(content / "gan-lab") == "v1.0.0" and released_tag(aside) == "v0.9.0"
    assert (aside / "checkpoints" / "vanilla" / "last.pt").read_bytes() == b"a student's fallback checkpoint"
    assert f"Moved the course code of release v0.9.0 aside to {aside}" in printed


def test_colab_says_when_a_newer_release_exists_and_how_to_move_to_it(tmp_path):
    url = make_origin(tmp_path, ["v0.9.0", "v1.0.0", "v1.2.0", "v1.10.0"])
    git("tag", "latest", "v0.9.0", cwd=Path(url.removeprefix("file://")))  # not a version: ignored
    content = tmp_path / "content"
    content.mkdir()
    (result,), printed = run_cells(tmp_path, content, cell_file(tmp_path, url, "v1.0.0"), colab=True)
    assert result["status"] == "ok", result["message"]
    assert "a newer release of the course code exists: v1.10.0 (this notebook uses v1.0.0)" in printed
    assert 'set REPO_TAG = "v1.10.0" at the top of this cell' in printed and "your code in this notebook stays" in printed
    (latest,), printed = run_cells(tmp_path, content, cell_file(tmp_path, url, "v1.10.0"), colab=True)
    assert latest["status"] == "ok" and "newer release" not in printed


def test_colab_switching_the_tag_in_a_running_session_imports_the_new_helpers(tmp_path):
    url = make_origin(tmp_path, ["v1.0.0", "v1.1.0"])
    content = tmp_path / "content"
    content.mkdir()
    old, new = cell_file(tmp_path, url, "v1.0.0", "old.py"), cell_file(tmp_path, url, "v1.1.0", "new.py")
    (_, before, switched, after), printed = run_cells(tmp_path, content, old, "import", new, "import", colab=True)
    assert switched["status"] == "ok", switched["message"]
    assert before["tag"] == "v1.0.0" and released_tag(content / "gan-lab-v1.0.0") == "v1.0.0"
    assert after["tag"] == "v1.1.0", "the helpers imported before the switch are still in use"
    assert after["helpers"] == str(content / "gan-lab" / "helpers" / "__init__.py")
    assert released_tag(content / "gan-lab") == "v1.1.0"


@pytest.mark.parametrize("problem", ["missing repository", "missing tag", "wrong marker"])
def test_colab_failures_stop_with_the_command_git_output_and_what_to_do(tmp_path, problem):
    url = make_origin(tmp_path, ["v1.0.0", "v2.0.0"], marker_of={"v2.0.0": "v1.0.0"})
    url, tag = {"missing repository": (url.replace("origin.git", "nowhere.git"), "v1.0.0"),
                "missing tag": (url, "v1.5.0"), "wrong marker": (url, "v2.0.0")}[problem]
    content = tmp_path / "content"
    content.mkdir()
    (result,), _ = run_cells(tmp_path, content, cell_file(tmp_path, url, tag), colab=True)
    message = result["message"]
    assert result["status"] == "SetupFailed" and message.startswith("SETUP FAILED: ") and "Traceback" not in message
    assert "What to do:" in message and "Runtime > Restart session" in message
    if problem == "wrong marker":
        assert "holds release v1.0.0 of the course code, not v2.0.0" in message
    else:
        assert f"tried: git clone --quiet --depth 1 --branch {tag} {url}" in message
        git_said = "nowhere.git' does not appear to be a git repository" if problem == "missing repository" else "v1.5.0 not found"
        assert "fatal: " in message and git_said in message, message
        assert not (content / "gan-lab").exists()


# ----------------------------------------------------------------------------- writing it into the notebooks
def _copies(tmp_path: Path) -> list[Path]:
    paths = []
    for name in LAB_NOTEBOOKS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((REPO_ROOT / name).read_bytes())
        paths.append(tmp_path / name)
    return paths


def test_sync_writes_cell_one_only_and_is_idempotent(tmp_path):
    paths = _copies(tmp_path)
    url, tag = "https://github.com/someone/gan-lab.git", "v7.0.0"
    before = {p: json.loads(p.read_text()) for p in paths}
    assert sorted(sync_setup_cells(paths, url, tag)) == sorted(paths)
    for path in paths:
        after = json.loads(path.read_text())
        assert "".join(after["cells"][SETUP_CELL_INDEX]["source"]) == render_setup_cell(url, tag)
        for nb in (before[path], after):  # everything but cell 1's source is as it was
            nb["cells"][SETUP_CELL_INDEX]["source"] = None
        assert after == before[path], f"{path.name}: sync changed more than cell {SETUP_CELL_INDEX}'s source"
    snapshot = {p: p.read_bytes() for p in paths}
    assert sync_setup_cells(paths, url, tag) == [] and {p: p.read_bytes() for p in paths} == snapshot
    assert setup_cell_drift(paths, url, tag) == []


def test_sync_changes_no_byte_outside_cell_one(tmp_path):
    """nbformat writes these notebooks back byte for byte, so a sync's diff is cell 1's lines only."""
    for path in _copies(tmp_path):
        text = path.read_text()
        assert nbformat.writes(nbformat.read(path, as_version=4)) + "\n" == text, (
            f"{path.name} is not in nbformat's own layout: a sync would reformat it (write it once with nbformat)")


def test_sync_refuses_a_notebook_whose_cell_one_is_not_a_setup_cell_and_writes_nothing(tmp_path):
    paths = _copies(tmp_path)
    nb = nbformat.read(paths[1], as_version=4)
    nb.cells[SETUP_CELL_INDEX], nb.cells[2] = nb.cells[2], nb.cells[SETUP_CELL_INDEX]
    nbformat.write(nb, paths[1])
    snapshot = {p: p.read_bytes() for p in paths}
    with pytest.raises(SetupCellError, match=f"{paths[1].name}: cell 1 is not the setup cell"):
        sync_setup_cells(paths, "https://github.com/x/y.git", "v1.0.0")
    assert {p: p.read_bytes() for p in paths} == snapshot
    assert any("cell 1 is not the setup cell" in line for line in setup_cell_drift(paths))


def test_check_command_names_each_notebook_that_drifted(tmp_path, capsys):
    paths = _copies(tmp_path)
    sync_setup_cells(paths)
    assert main(["--check", *map(str, paths)]) == 0
    nb = nbformat.read(paths[0], as_version=4)
    nb.cells[SETUP_CELL_INDEX].source = nb.cells[SETUP_CELL_INDEX].source.replace(REPO_TAG, "v0.0.1")
    nbformat.write(nb, paths[0])
    assert main(["--check", *map(str, paths)]) == 1
    err = capsys.readouterr().err
    assert f"DRIFT {paths[0].name}: cell 1 differs" in err and paths[1].name not in err
    assert main([str(p) for p in paths]) == 0 and main(["--check", *map(str, paths)]) == 0
