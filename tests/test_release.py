"""The student release (helpers/course/release.py): complete, nothing of the instructors', runnable on its own."""

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

from helpers.course.labs import LABS
from helpers.course.release import (INSTRUCTOR_MODULES, MARKER, REPO_TAG, REPO_URL, ReleaseError, colab_url,
                                    github_repo, main, pyproject_problems, release_files, write_release)
from helpers.course.setup_cell import SETUP_CELL_INDEX, render_setup_cell
from helpers.env import settings

from conftest import REPO_ROOT
from release_support import (HIDDEN_REGION, INSTRUCTOR_PHRASES, SOLUTION_REGION, assert_stopped_at_first_todo, execute,
                             git, kernel_environment, outside, put_back_solutions)

SOLUTIONS = {lab.notebook: nbformat.read(lab.notebook_path(), as_version=4) for lab in LABS}


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """The release with this repository's URL and tag, built once for the module (do not change it)."""
    out = tmp_path_factory.mktemp("release") / "gan-lab"
    assert main(["build", str(out)]) == 0
    return out


def _text_files(out: Path) -> dict[str, str]:
    """Every text file of the release; a notebook as its cells' sources and printed text."""
    texts = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file() and ".git" not in p.relative_to(out).parts):
        rel = path.relative_to(out).as_posix()
        if path.suffix == ".ipynb":
            nb = nbformat.read(path, as_version=4)
            texts[rel] = "\n".join([c.source for c in nb.cells] + [o.get("text", "") for c in nb.cells
                                                                   for o in c.get("outputs", [])])
        else:
            try:
                texts[rel] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # the classifiers' weights
    return texts


def _region_lines(region) -> list[str]:
    """The non-trivial lines inside the ``region`` regions of the solution notebooks.

    Blank lines, comments, lines shorter than 12 characters and lines that also occur outside every
    region of the solution notebooks (``)``, ``return x``, a shared import) do not count.
    """
    outside = set()
    for nb in SOLUTIONS.values():
        for cell in nb.cells:
            rest = HIDDEN_REGION.sub("", SOLUTION_REGION.sub("", cell.source))
            outside |= {line.strip() for line in rest.split("\n")}
    lines = set()
    for nb in SOLUTIONS.values():
        for cell in nb.cells:
            for m in region.finditer(cell.source + "\n"):
                lines |= {line.strip() for line in m.group("body").split("\n")}
    return sorted(line for line in lines if len(line) >= 12 and not line.startswith("#") and line not in outside)


# ----------------------------------------------------------------------------- what is in it
def test_the_release_holds_the_labs_the_student_files_and_helpers_only(release):
    files = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    top = {f for f in files if "/" not in f}
    labs_at_root = {lab.notebook for lab in LABS if "/" not in lab.notebook}
    assert top == labs_at_root | {"README.md", "requirements.txt", ".gitignore", "malaria_test.py", "data_README.md",
                                  "checkpoint_links.txt", "pyproject.toml"}, sorted(top)
    assert {f.split("/")[0] for f in files} - top == {"helpers"} | {lab.notebook.split("/")[0] for lab in LABS
                                                                     if "/" in lab.notebook}
    for lab in LABS:
        nb = nbformat.read(release / lab.notebook, as_version=4)
        assert nb.cells[0].id == "open-in-colab"
        setup = [c for c in nb.cells if c.get("id") == SOLUTIONS[lab.notebook].cells[SETUP_CELL_INDEX].id]
        assert setup and setup[0].source == render_setup_cell(REPO_URL, REPO_TAG), f"{lab.notebook}: setup cell"
        assert any("raise NotImplementedError()" in c.source for c in nb.cells), f"{lab.notebook} is not the student version"
        assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code")
    assert f'REPO_TAG = "{REPO_TAG}"' in (release / MARKER).read_text()
    gitignore = (release / ".gitignore").read_text().split("\n")
    for ignored in ("/checkpoints/", "/outputs/", "/data/", "__pycache__/"):
        assert ignored in gitignore, f".gitignore does not ignore {ignored}"


def test_no_solution_or_hidden_test_line_and_no_instructor_text_in_the_release(release):
    solution_lines, hidden_lines = _region_lines(SOLUTION_REGION), _region_lines(HIDDEN_REGION)
    assert len(solution_lines) > 100 and hidden_lines, "the solution notebooks lost their regions: this test sees nothing"
    leaks = []
    for rel, text in _text_files(release).items():
        lines = {line.strip() for line in text.split("\n")}
        leaks += [f"{rel}: solution line {line!r}" for line in solution_lines if line in lines]
        leaks += [f"{rel}: hidden-test line {line!r}" for line in hidden_lines if line in lines]
        leaks += [f"{rel}: instructor text {p!r}" for p in INSTRUCTOR_PHRASES if p.lower() in text.lower()]
    assert leaks == [], "\n".join(leaks[:30])


def test_released_helpers_are_the_repositorys_and_no_course_tooling(release):
    released = {p.relative_to(release).as_posix() for p in (release / "helpers").rglob("*.py")}
    modules = {rel[:-3].replace("/", ".").removesuffix(".__init__") for rel in released}
    assert not modules & set(INSTRUCTOR_MODULES), sorted(modules & set(INSTRUCTOR_MODULES))
    for name in ("helpers/course/grade.py", "helpers/course/grade_runner.py", "helpers/course/templates.py",
                 "helpers/checks/store.py", "helpers/course/release.py", "helpers/course/setup_cell.py"):
        assert name not in released, f"{name} reached the release"
    for rel in released - {MARKER}:
        assert (release / rel).read_bytes() == (REPO_ROOT / rel).read_bytes(), f"{rel} differs from the repository's"
    # the package data pyproject.toml ships for a released package is released too (the builder finds it by itself)
    patterns = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["helpers"]
    data = [path for pattern in patterns for path in (REPO_ROOT / "helpers").glob(pattern)]
    assert len(data) >= 7
    for path in data:
        package = next(p for p in path.parents if (p / "__init__.py").is_file())
        if (release / package.relative_to(REPO_ROOT) / "__init__.py").is_file():
            assert (release / path.relative_to(REPO_ROOT)).is_file(), f"{path.relative_to(REPO_ROOT)} is not released"


def test_every_import_of_the_release_works_from_the_release_folder_alone(release):
    sources = [p.read_text() for p in release.rglob("*.py")]
    for lab in LABS:
        nb = nbformat.read(release / lab.notebook, as_version=4)
        sources += ["\n".join(line for line in c.source.split("\n") if not line.lstrip().startswith(("%", "!")))
                    for c in nb.cells if c.cell_type == "code"]
    wanted = set()
    for src in sources:
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("helpers", "malaria_test"):
                wanted |= {(node.module, a.name) for a in node.names}
            elif isinstance(node, ast.Import):
                wanted |= {(a.name, None) for a in node.names if a.name.split(".")[0] == "helpers"}
    assert len(wanted) > 50
    probe = ("import importlib, json, sys\n"
             f"wanted = {sorted(wanted, key=str)!r}\n"
             "missing = []\n"
             "for module, name in wanted:\n"
             "    try:\n"
             "        m = importlib.import_module(module)\n"
             "        if name and not hasattr(m, name):\n"
             "            importlib.import_module(module + '.' + name)\n"
             "    except Exception as err:\n"
             "        missing.append(f'{module} {name}: {type(err).__name__}: {err}')\n"
             "import helpers, helpers.classifiers as c, helpers.checks.common as k, helpers.malaria.fetch as f\n"
             "c.load_classifier('mnist'); c.load_classifier('fashion_mnist'); k.expected('vanilla'); k.expected('cwgan')\n"
             "assert f.MANIFEST_PATH.is_file()\n"
             "print(json.dumps({'missing': missing, 'helpers': helpers.__file__, 'path': sys.path}))\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(release.parent), "GANLAB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-c", probe], cwd=release, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["missing"] == [], "\n".join(got["missing"])
    assert got["helpers"] == str(release / "helpers" / "__init__.py")
    assert all(outside(Path(p or "."), REPO_ROOT) for p in got["path"] if p), "the probe could see this repository"


def test_requirements_name_every_third_party_import(release):
    requirements = {re.split(r"[=<>~ ]", line)[0].lower() for line in (release / "requirements.txt").read_text().split("\n")
                    if line.strip() and not line.startswith("#")}
    pip_name = {"PIL": "pillow", "IPython": "ipython", "torch_fidelity": "torch-fidelity"}
    tops = set()
    for path in release.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                tops.add(node.module.split(".")[0])
    for lab in LABS:
        for cell in nbformat.read(release / lab.notebook, as_version=4).cells:
            if cell.cell_type == "code":
                tops |= set(re.findall(r"^\s*(?:from|import) (\w+)", cell.source, re.M))
    third = {t for t in tops if t not in sys.stdlib_module_names and t not in ("helpers", "malaria_test", "google")}
    assert {"torch", "numpy", "matplotlib", "PIL"} <= third
    missing = sorted(t for t in third if pip_name.get(t, t).lower() not in requirements)
    assert missing == [], f"requirements.txt lacks {missing}"
    assert {"ipykernel", "jupyterlab"} <= requirements
    pins = dict(re.findall(r"^(torch|torchvision)==(\S+)", (REPO_ROOT / "requirements.txt").read_text(), re.M))
    for name, version in pins.items():
        assert f"{name}=={version}" in (release / "requirements.txt").read_text()


def test_readme_for_students_badges_routes_and_attributions(release):
    readme = (release / "README.md").read_text()
    for lab in LABS:
        link = f"https://colab.research.google.com/github/gan-lab/gan-lab/blob/{REPO_TAG}/{lab.notebook}"
        assert f"(https://colab.research.google.com/assets/colab-badge.svg)]({link})" in readme
        nb = nbformat.read(release / lab.notebook, as_version=4)
        assert link in nb.cells[0].source, f"{lab.notebook}: no badge"
    for needed in (f"git clone --branch {REPO_TAG} {REPO_URL}", "pip install -r requirements.txt", "jupyter lab",
                   "MyDrive/gan-lab/<lab>/", "checkpoints/<lab>/", "checkpoint_links.txt", "REPO_TAG",
                   "Runtime → Restart session", "Y. LeCun, C. Cortes, C. J. C. Burges",
                   "H. Xiao, K. Rasul, R. Vollgraf", "arXiv:1708.07747, 2017", "Zalando", "MIT",
                   "Not redistributed", "Sultani", "CVPR 2022", "data_README.md"):
        assert needed in readme, f"the student README does not say {needed!r}"
    source = settings().data / "iml_malaria" / "SOURCE.txt" if settings().data else None
    if source is None or not source.is_file():
        pytest.skip("no ../shared/data/iml_malaria/SOURCE.txt to compare the IML-Malaria citation with")
    cite = source.read_text().split("Cite:", 1)[1].split("Online,")[0]
    assert " ".join(cite.split()) in " ".join(readme.split()), "the IML-Malaria citation differs from SOURCE.txt's"


def test_urls_badges_and_what_is_refused(tmp_path):
    for url in ("https://github.com/me/gan-lab.git", "https://github.com/me/gan-lab", "http://github.com/me/gan-lab/",
                "git@github.com:me/gan-lab.git", "ssh://git@github.com/me/gan-lab.git"):
        assert github_repo(url) == ("me", "gan-lab"), url
    assert colab_url("https://github.com/org/lab.git", "v2", "sub/x.ipynb") == \
        "https://colab.research.google.com/github/org/lab/blob/v2/sub/x.ipynb"
    for url in ("/srv/git/gan-lab.git", "file:///srv/git/gan-lab.git", "https://gitlab.com/me/gan-lab.git"):
        assert github_repo(url) is None and colab_url(url, "v1", "x.ipynb") is None
    files = release_files("file:///srv/git/gan-lab.git", "v3.1.4")
    badge = nbformat.reads(files["lab8_vanilla.ipynb"].decode(), as_version=4).cells[0].source
    assert "not on GitHub" in badge and "colab.research.google.com/github" not in badge
    assert "there are no *Open in Colab* links" in files["README.md"].decode()
    assert b'REPO_TAG = "v3.1.4"' in files[MARKER] and b"file:///srv/git/gan-lab.git" in files[MARKER]
    with pytest.raises(ReleaseError, match="SSH address"):
        release_files("git@github.com:me/gan-lab.git", "v1.0.0")
    with pytest.raises(ReleaseError, match="not a plain tag name"):
        release_files(REPO_URL, "v1 final")


def test_the_build_is_deterministic_and_overrides_reach_every_setup_cell():
    a, b = release_files(), release_files()
    assert a == b and list(a) == sorted(a)
    other = release_files("https://github.com/someone/fork.git", "v9.0.0")
    assert set(other) == set(a)
    for lab in LABS:
        text = other[lab.notebook].decode()
        assert 'REPO_URL = \\"https://github.com/someone/fork.git\\"' in text and 'REPO_TAG = \\"v9.0.0\\"' in text
        assert REPO_URL not in text
    assert all(b"gan-lab/gan-lab" not in data for rel, data in other.items() if rel != "pyproject.toml"), \
        [rel for rel, data in other.items() if b"gan-lab/gan-lab" in data]


def test_pyproject_is_released_only_while_it_installs_the_release(tmp_path):
    files = release_files()
    assert pyproject_problems((REPO_ROOT / "pyproject.toml").read_text(), files) == []
    narrow = (REPO_ROOT / "pyproject.toml").read_text().replace('"checks/answers/*.json", ', "")
    problems = pyproject_problems(narrow, files)
    assert "its package-data does not ship helpers/checks/answers/vanilla.json" in problems, problems
    assert pyproject_problems(narrow.replace('"malaria_test"', '"gone"'), files)[0] == "its module gone is not released"
    src = tmp_path / "src"  # and it builds a wheel with everything released
    write_release(src, files)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "dist"), "-q"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    import zipfile

    names = set(zipfile.ZipFile(next((tmp_path / "dist").glob("*.whl"))).namelist())
    wanted = {rel for rel in files if rel.startswith("helpers/")} | {"malaria_test.py"}
    assert wanted <= names, sorted(wanted - names)


# ----------------------------------------------------------------------------- --check and --git
def test_check_passes_after_a_build_and_names_every_file_that_differs(tmp_path, capsys):
    out = tmp_path / "gan-lab"
    assert main(["build", str(out), "--tag", "v0.3.0"]) == 0
    assert main(["build", str(out), "--tag", "v0.3.0", "--check"]) == 0
    assert main(["build", str(out), "--check"]) == 1, "a release of another tag passed the check"
    capsys.readouterr()
    for ignored in ("checkpoints/vanilla/last.pt", "outputs/vanilla-quick/x.png", "helpers/__pycache__/env.cpython-311.pyc",
                    "data/MNIST/raw/x.gz"):
        (out / ignored).parent.mkdir(parents=True, exist_ok=True)
        (out / ignored).write_bytes(b"a student's run")
    nb = nbformat.read(out / "lab8_vanilla.ipynb", as_version=4)
    nb.cells[3].source += "\n# edited"
    nbformat.write(nb, out / "lab8_vanilla.ipynb")
    (out / "README.md").unlink()
    (out / "helpers" / "grade.py").write_text("")
    run = subprocess.run([sys.executable, "-m", "helpers.course.release", "build", str(out), "--tag", "v0.3.0", "--check"],
                         cwd=REPO_ROOT, capture_output=True, text=True)
    assert run.returncode == 1
    stale = sorted(line for line in run.stderr.split("\n") if line.startswith("STALE"))
    assert stale == ["STALE README.md: missing", "STALE helpers/grade.py: not part of the release",
                     "STALE lab8_vanilla.ipynb: differs from what build writes"], run.stderr
    assert main(["build", str(out), "--tag", "v0.3.0"]) == 0  # build puts it back, removes the stray file
    assert main(["build", str(out), "--tag", "v0.3.0", "--check"]) == 0
    assert (out / "checkpoints/vanilla/last.pt").read_bytes() == b"a student's run"  # ignored files are left alone


def test_a_folder_that_is_not_a_release_is_refused_and_left_alone(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["build", str(tmp_path / "mine")]) == 1
    assert "neither empty nor a GAN Lab release" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    assert main(["build", str(REPO_ROOT / "build" / "release")]) == 1
    assert "inside this repository" in capsys.readouterr().err


def test_git_gives_one_commit_an_annotated_tag_and_the_push_commands(tmp_path, capsys):
    out = tmp_path / "gan-lab"
    url = "https://github.com/course-org/gan-lab.git"
    assert main(["build", str(out), "--url", url, "--tag", "v1.0.0", "--git"]) == 0
    printed = capsys.readouterr().out
    assert f"git -C {out} remote add origin {url}" in printed and f"git -C {out} push --follow-tags origin main" in printed
    assert git("log", "--format=%s", cwd=out).split("\n")[:-1] == ["GAN Lab v1.0.0: student release"]
    assert git("cat-file", "-t", "v1.0.0", cwd=out).strip() == "tag"  # annotated
    assert git("status", "--porcelain", cwd=out) == ""
    tracked = set(git("ls-files", cwd=out).split("\n")) - {""}
    assert tracked == set(release_files(url, "v1.0.0"))
    # a fix mid-term: the next tag on top, the old tag kept
    assert main(["build", str(out), "--url", url, "--tag", "v1.0.1", "--git"]) == 0
    assert git("tag", cwd=out).split() == ["v1.0.0", "v1.0.1"]
    assert len(git("log", "--format=%H", cwd=out).split()) == 2
    assert git("show", "v1.0.0:" + MARKER, cwd=out).count('REPO_TAG = "v1.0.0"') == 1
    assert main(["build", str(out), "--url", url, "--tag", "v1.0.1", "--git"]) == 1
    assert "already has the tag v1.0.1" in capsys.readouterr().err


# ----------------------------------------------------------------------------- running it
@pytest.fixture(params=[lab.notebook for lab in LABS], ids=[lab.name for lab in LABS])
def lab_notebook(request):
    return request.param


def test_released_notebook_stops_at_its_first_todo(release, lab_notebook, lab_dirs, monkeypatch):
    kernel_environment(monkeypatch)
    monkeypatch.setenv("GANLAB_CHECKPOINTS", str(lab_dirs["checkpoints"]))
    monkeypatch.setenv("GANLAB_OUTPUT", str(lab_dirs["outputs"]))
    nb = nbformat.read(release / lab_notebook, as_version=4)
    assert_stopped_at_first_todo(nb, execute(nb, cwd=release))


@pytest.fixture(scope="module")
def solved_release(release, tmp_path_factory) -> Path:
    """A copy of the release whose notebooks have the solution regions put back."""
    out = tmp_path_factory.mktemp("solved") / "gan-lab"
    shutil.copytree(release, out)
    for lab in LABS:
        nb = put_back_solutions(nbformat.read(release / lab.notebook, as_version=4), SOLUTIONS[lab.notebook])
        nbformat.write(nb, out / lab.notebook)
    return out


PROBE = ("import json, sys, helpers\n"
         "print('PROBE-RESULT ' + json.dumps({'helpers': helpers.__file__, 'path': sys.path}))")


def test_released_notebook_with_the_solutions_put_back_runs_to_the_end(solved_release, lab_notebook, lab_dirs,
                                                                        monkeypatch):
    kernel_environment(monkeypatch)
    monkeypatch.setenv("GANLAB_CHECKPOINTS", str(lab_dirs["checkpoints"]))
    monkeypatch.setenv("GANLAB_OUTPUT", str(lab_dirs["outputs"]))
    nb = nbformat.read(solved_release / lab_notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    err = execute(nb, cwd=solved_release, timeout=600)
    assert err is None, str(err)[-3000:]
    probe = json.loads(nb.cells[-1].outputs[0]["text"].split("PROBE-RESULT ", 1)[1])
    assert probe["helpers"] == str(solved_release / "helpers" / "__init__.py")
    assert all(outside(Path(p), REPO_ROOT) for p in probe["path"] if p), "the kernel could import from this repository"
