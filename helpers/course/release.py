"""The student release: a repository of its own, built from this one, that students open in Colab.

    python -m helpers.course.release build OUT [--url URL] [--tag TAG] [--git] [--check]

``REPO_URL`` and ``REPO_TAG`` below are the one place the published repository and its current tag
live; ``--url`` / ``--tag`` override them for one build. The solution notebooks' setup cell carries
these values (``helpers/course/setup_cell.py`` renders it; a test fails when the notebooks drift),
and every released notebook carries the values of its build.

What OUT receives, and nothing else (all computed here, in memory, so the same inputs give the same bytes):

* every lab of ``LABS`` as its student version (:func:`helpers.course.templates.make_template` of the
  solution notebook), at the lab's solution path, with its setup cell rendered for URL and TAG and, in
  place of the template's instructor note, a cell with the lab's *Open in Colab* badge
  (``https://colab.research.google.com/github/<owner>/<repo>/blob/<tag>/<path>``; for a URL that is
  not on GitHub, e.g. a local path in tests, the cell says that there is no Colab link);
* the ``helpers`` modules the students need: the closure of the ``helpers`` imports (read with ``ast``,
  including imports inside functions) of the released notebooks, of ``malaria_test.py`` and of the
  modules that released text files tell students to run (``python -m helpers.<module>``), plus every
  package ``__init__``; a module of :data:`INSTRUCTOR_MODULES` in that closure stops the build. Then
  the package data those modules load: a string constant in a released module that names a file or
  a data folder beside it (``"weights"``, ``"answers"``, a manifest ``"x.json"``) brings it along;
* ``helpers/_release.py``, the version marker: URL and TAG of this build (the setup cell checks it);
* :data:`COPIED` files as they are, a ``requirements.txt`` for running locally (the release's
  third-party imports, with the pins of this repository's ``requirements.txt``), a ``.gitignore`` and
  a ``README.md`` for students;
* ``pyproject.toml`` as it is, but only while it still works for the release: its readme, modules and
  version attribute are released files, and its package-data patterns cover every data file the
  release ships (:func:`pyproject_problems`); otherwise it is left out and the build says why.

``--git`` makes OUT a git repository (``git init`` when it is not one yet), commits the release and
tags it (annotated); the output says how to push it. Building a new tag into the folder of the
previous release keeps its history: one more commit and one more tag, and the old tags stay. A
folder that is neither empty nor a release is refused, so nothing else is ever deleted.

``--check`` writes nothing: it exits 1 naming every file of OUT that differs from what ``build``
(with the same ``--url``/``--tag``) would write, is missing or should not be there; 0 when OUT is in step.
Files the release's ``.gitignore`` ignores (checkpoints, outputs, data, caches) and ``.git`` are not compared.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import re
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import nbformat

REPO_URL = "https://github.com/gan-lab/gan-lab.git"
REPO_TAG = "v0.1.0"

REPO_ROOT = Path(__file__).resolve().parents[2]
MARKER = "helpers/_release.py"                     # the version marker the setup cell reads
COPIED = ("malaria_test.py", "data_README.md", "checkpoint_links.txt")
PYPROJECT = "pyproject.toml"                       # copied only while it still works for the release
SCRIPTS = ("malaria_test.py",)                     # released scripts whose helpers imports count
BADGE_CELL_ID = "open-in-colab"                    # replaces the template's note (templates.NOTE_CELL_ID)
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
# Course tooling that must never reach students: the grader, the template and stored-answer generators,
# this builder, the benchmark, the classifier training script, and the lab registry (its points tables
# name the hidden tests and describe the solution regions), with run_notebook, which reads it.
INSTRUCTOR_MODULES = (
    "helpers.course.grade", "helpers.course.grade_runner", "helpers.course.grade_checkpoint",
    "helpers.course.grade_class", "helpers.course.classtable", "helpers.course.scoring", "helpers.course.probe",
    "helpers.course.templates", "helpers.course.release", "helpers.course.setup_cell", "helpers.course.bench",
    "helpers.course.labs", "helpers.course.run_notebook", "helpers.checks.store", "helpers.train_classifier",
)
# Imports whose pip package has another name; any other third-party import is its own package name.
PIP_NAMES = {"PIL": "pillow", "IPython": "ipython", "torch_fidelity": "torch-fidelity", "yaml": "pyyaml",
             "sklearn": "scikit-learn", "cv2": "opencv-python"}
RUN_NOTEBOOKS = ("ipykernel", "jupyterlab")        # what opens and runs the notebooks on a student's machine
# What the release's .gitignore ignores; build and --check leave these paths alone.
GITIGNORE = ("/checkpoints/", "/outputs/", "/data/", "/.venv/", "__pycache__/", "*.pyc", ".ipynb_checkpoints/",
             "/build/", "*.egg-info/")
_COMMAND = re.compile(r"python3? -m (helpers(?:\.\w+)+)")
_GITHUB = re.compile(r"(?:https?://(?:[^@/]+@)?(?:www\.)?github\.com/|ssh://git@github\.com/|git@github\.com:)"
                     r"(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?/?")
_SSH = re.compile(r"^(?:ssh://|[\w.-]+@[\w.-]+:)")
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# IML-Malaria's citation in the student README: the one of the data's SOURCE.txt (../shared/data/iml_malaria/
# SOURCE.txt; a test compares them). Where it is fetched from is helpers.malaria.fetch's REPOSITORY and COMMIT.
IML_CITATION = ('Q. A. Arshad, M. Ali, S.-ul Hassan, C. Chen, A. Imran, G. Rasul, W. Sultani, "A Dataset and '
                'Benchmark for Malaria Life-Cycle Classification in Thin Blood Smear Images", arXiv:2102.08708 '
                '(Neural Computing and Applications, 2022)')


class ReleaseError(ValueError):
    """The release cannot be built as asked (the message says what was wrong and what to do)."""


# ----------------------------------------------------------------------------- URLs
def github_repo(url: str) -> tuple[str, str] | None:
    """``(owner, repo)`` of a GitHub URL (https, ssh or scp form, with or without ``.git``), else None."""
    m = _GITHUB.fullmatch(url.strip())
    return (m.group("owner"), m.group("repo")) if m else None


def colab_url(url: str, tag: str, path: str) -> str | None:
    """The *Open in Colab* address of ``path`` in the repository ``url`` at ``tag``; None off GitHub."""
    repo = github_repo(url)
    if repo is None:
        return None
    return f"https://colab.research.google.com/github/{repo[0]}/{repo[1]}/blob/{tag}/{path}"


def _check_url_and_tag(url: str, tag: str) -> None:
    if _SSH.match(url):
        raise ReleaseError(f"{url} is an SSH address: Colab runtimes have no SSH keys, so the students' setup cell "
                           f"could not clone it. Give the https address (https://github.com/<owner>/<repo>.git).")
    if not _TAG.fullmatch(tag):
        raise ReleaseError(f"the tag {tag!r} is not a plain tag name (letters, digits, '.', '_', '-'), e.g. v0.2.0.")


# ----------------------------------------------------------------------------- notebooks
def _badge_cell(url: str, tag: str, path: str, title: str) -> nbformat.NotebookNode:
    link = colab_url(url, tag, path)
    if link is not None:
        where = f"[![Open In Colab]({BADGE_IMAGE})]({link})"
    else:
        where = (f"This release is published at `{url}`, which is not on GitHub: Colab opens notebooks from "
                 f"GitHub only, so there is no *Open in Colab* link. Run it locally (README.md), or upload it to "
                 f"Colab (*File → Upload notebook*).")
    cell = nbformat.v4.new_markdown_cell(
        f"{where}\n\n"
        f"> **{title}** · GAN Lab, release `{tag}`. Write your code where a cell says `##TODO##`, replacing its "
        f"`raise NotImplementedError()` line; the cell right after each TODO checks your code at once. In Colab, "
        f"first *File → Save a copy in Drive*: your copy keeps your work.")
    cell["id"] = BADGE_CELL_ID
    return cell


def _title(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The notebook's first markdown heading, without its ``#``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+?)\s*$", cell.source, re.M)
            if m:
                return m.group(1)
    return fallback


def release_notebook(solution_path: Path, rel_path: str, url: str, tag: str) -> tuple[str, str]:
    """The released notebook of one lab: its template, setup cell for ``url``/``tag``, badge cell on top.

    Returns:
        ``(text, title)``: the file's text as ``nbformat.write`` writes it, and the lab's title.
    """
    from helpers.course.setup_cell import SETUP_CELL_INDEX, is_setup_cell, render_setup_cell
    from helpers.course.templates import NOTE_CELL_ID, make_template

    solution = nbformat.read(solution_path, as_version=4)
    nb = make_template(solution, solution_path.name)
    if nb.cells[0].get("id") != NOTE_CELL_ID:
        raise ReleaseError(f"{solution_path.name}: the template has no note cell ({NOTE_CELL_ID}) to replace.")
    setup_id = solution.cells[SETUP_CELL_INDEX].get("id") if len(solution.cells) > SETUP_CELL_INDEX else None
    setup = [c for c in nb.cells if setup_id and c.get("id") == setup_id]
    if not setup or not is_setup_cell(setup[0]):
        raise ReleaseError(f"{solution_path.name}: cell {SETUP_CELL_INDEX} is not the setup cell; "
                           f"run `python -m helpers.course.setup_cell` to write it.")
    setup[0].source = render_setup_cell(url, tag)
    title = _title(solution, solution_path.stem)
    nb.cells[0] = _badge_cell(url, tag, rel_path, title)
    nbformat.validate(nb)
    text = nbformat.writes(nb)
    return (text if text.endswith("\n") else text + "\n"), title


def _code_of_notebook(text: str) -> str:
    """The Python of a notebook's code cells (IPython magics and shell lines turned into calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    transform = TransformerManager().transform_cell
    nb = nbformat.reads(text, as_version=4)
    return "\n".join(transform(c.source) for c in nb.cells if c.cell_type == "code")


# ----------------------------------------------------------------------------- the helpers students need
def _module_path(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _imported(source: str, module: str | None = None, is_package: bool = False) -> set[str]:
    """Every module ``source`` imports anywhere (top level, functions, branches), absolute names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package of ``module``
                parts = (module or "").split(".")
                base = parts if is_package else parts[:-1]
                base = base[:len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found |= {f"{name}.{alias.name}" for alias in node.names}  # `from pkg import submodule`
    return found


def helper_modules(sources: list[str], root: Path = REPO_ROOT) -> dict[str, Path]:
    """The ``helpers`` modules ``sources`` need: their imports' closure, with every package ``__init__``.

    Returns:
        module name -> file, sorted by name. Names that are not modules (``from helpers.env import
        setup_lab``) are dropped.
    """
    todo = {name for src in sources for name in _imported(src) if name.split(".")[0] == "helpers"}
    found: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        if name in found:
            continue
        path = _module_path(name, root)
        if path is None:
            continue
        found[name] = path
        parts = name.split(".")
        todo |= {".".join(parts[:i]) for i in range(1, len(parts))}
        todo |= {m for m in _imported(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
                 if m.split(".")[0] == "helpers"}
    return dict(sorted(found.items()))


def package_data(modules: dict[str, Path]) -> list[Path]:
    """Files the modules load from beside themselves: each string constant of a module that names a
    non-Python file, or a folder that is not a package, in that module's folder (all files under it)."""
    files: set[Path] = set()
    for path in modules.values():
        folder = path.parent
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            name = node.value
            if not re.fullmatch(r"[\w-]+(?:\.[\w]+)?", name) or name.startswith("_"):
                continue
            target = folder / name
            if target.is_file() and target.suffix != ".py":
                files.add(target)
            elif target.is_dir() and not (target / "__init__.py").exists():
                files |= {f for f in target.rglob("*") if f.is_file() and not _ignored(f.relative_to(folder).as_posix())}
    return sorted(files)


def _ignored(rel: str) -> bool:
    """True for a path (relative to OUT, posix) that the release's .gitignore ignores."""
    parts = rel.split("/")
    for pattern in GITIGNORE:
        if pattern.startswith("/"):
            if parts[0] == pattern.strip("/"):
                return True
        elif pattern.endswith("/"):
            if pattern.rstrip("/") in parts[:-1]:
                return True
        elif fnmatch.fnmatch(parts[-1], pattern):
            return True
    return False


# ----------------------------------------------------------------------------- generated files
def _marker(url: str, tag: str) -> str:
    return (f'"""The GAN Lab release these helpers belong to, written with it (the notebooks\' setup cell reads\n'
            f'REPO_TAG here to check that it imports the helpers of its own tag)."""\n\n'
            f'REPO_URL = "{url}"\nREPO_TAG = "{tag}"\n')


def _requirements(imports: set[str], root: Path) -> str:
    """A requirements file for the third-party imports, pinned as this repository's requirements.txt pins them."""
    pins = {}
    for line in (root / "requirements.txt").read_text().splitlines():
        m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(==.*)?$", line.split("#")[0])
        if m:
            pins[m.group(1).lower()] = m.group(2) or ""
    local = {"helpers", "malaria_test", "google", "__future__"}
    names = {PIP_NAMES.get(top, top) for top in {m.split(".")[0] for m in imports}
             if top and top not in sys.stdlib_module_names and top not in local}
    names |= set(RUN_NOTEBOOKS)
    lines = [f"{name}{pins.get(name.lower(), '')}" for name in sorted(names, key=str.lower)]
    return ("# GAN Lab: what the labs need on your own machine (Colab has it already; the notebooks install\n"
            "# anything it lacks). python3 -m pip install -r requirements.txt, then jupyter lab.\n"
            + "\n".join(lines) + "\n")


def _gitignore() -> str:
    return "# Your runs: checkpoints, figures, downloaded data, caches.\n" + "\n".join(GITIGNORE) + "\n"


def _readme(url: str, tag: str, labs: list[tuple[str, str, str]], released_modules: list[str]) -> str:
    """The student README. ``labs``: (lab name, notebook path, title)."""
    from helpers.malaria.fetch import COMMIT, REPOSITORY

    repo = github_repo(url)
    rows = []
    for name, path, title in labs:
        link = colab_url(url, tag, path)
        badge = f"[![Open In Colab]({BADGE_IMAGE})]({link})" if link else "no Colab link (not on GitHub)"
        rows.append(f"| {title} | [`{path}`]({path}) | {badge} |")
    clone_dir = repo[1] if repo else "gan-lab"
    colab_note = ("" if repo else
                  f"\nThis release is published at `{url}`, which is not on GitHub: Colab opens notebooks from GitHub "
                  f"only, so there are no *Open in Colab* links. Work locally (below).\n")
    share = ("\nTo see which checkpoint files to share and whether `checkpoint_links.txt` is filled in:\n"
             "`python -m helpers.course.share_checkpoints` (in a terminal, or with `!` in a Colab cell after the setup cell).\n"
             if "helpers.course.share_checkpoints" in released_modules else "")
    return f"""# GAN Lab · release `{tag}`

Three labs on generative adversarial networks, in Python and PyTorch. Each is a Jupyter notebook you
complete: where a cell says `##TODO##`, write the code that replaces its `raise NotImplementedError()`
line; the cell right after each TODO checks your code at once. The notebooks run in Google Colab (with
a GPU) and on your own machine.

| lab | notebook | open in Colab |
|---|---|---|
{chr(10).join(rows)}
{colab_note}
## In Colab

1. Click the lab's *Open in Colab* badge, then *File → Save a copy in Drive*: your copy keeps your work
   (the badge always opens the original).
2. *Runtime → Change runtime type → GPU* (on a CPU runtime the notebook says how to switch).
3. Run the cells from the top. The first one, the **setup cell**, fetches this repository at release
   `{tag}` into the runtime (`/content/gan-lab`) and works from there. A later cell asks to mount your
   Google Drive: allow it, your checkpoints go there. After a disconnect, open your copy and run the
   cells again: training resumes from the last checkpoint.
4. The last cell of each lab writes everything to Drive and unmounts it: run it before you close the tab.

**New releases.** When your instructor publishes a fix, the setup cell of your saved copy says that a
newer release exists and which one. To move to it, change `REPO_TAG` at the top of the setup cell to
that tag, then *Runtime → Restart session* and run the notebook again. Your code in the notebook stays;
the copy of the old release in the runtime is kept beside the new one (`/content/gan-lab-<old tag>`).

## On your own machine

```bash
git clone --branch {tag} {url} {clone_dir}
cd {clone_dir}
python3 -m venv .venv && . .venv/bin/activate
python3 -m pip install -r requirements.txt
jupyter lab
```

Open a notebook and run it from the top; the setup cell finds the course code (the `helpers/` folder)
from wherever the notebook sits in this folder. Python 3.10 or newer; a GPU (CUDA or Apple MPS) is used
when there is one. `GANLAB_PROFILE=smoke|quick|full` (or `PROFILE = "..."` in a notebook's parameter
cell) sets how long training runs: `quick` is the default on a CPU, `full` (the lab's real results) on
a GPU.

## Where things go

| what | in Colab | on your machine |
|---|---|---|
| checkpoints (`last.pt`, `best.pt`) | Google Drive, `MyDrive/gan-lab/<lab>/` | `checkpoints/<lab>/` |
| figures and sample grids | `/content/gan-lab/outputs/<lab>-<profile>/` | `outputs/<lab>-<profile>/` |
| MNIST, Fashion-MNIST | downloaded into `/content/gan-lab/data/` | downloaded into `data/` (or `GANLAB_DATA`) |
| IML-Malaria (Lab 3) | fetched once, kept on Google Drive | fetched once into a cache folder (`data_README.md`) |

In the `smoke` and `quick` profiles the checkpoint folder is `<lab>-<profile>`, so a short run never
overwrites a real one. `CHECKPOINT_DIR` in a notebook's parameters cell puts them in another folder (in
Colab, a shared drive: `/content/drive/Shareddrives/<team>/...`); `GANLAB_CHECKPOINTS` moves the folder of
every lab. If Google Drive cannot be mounted, they go to the runtime's own disk, with a warning (they are
lost when the runtime ends). Checkpoints are written after every epoch; running the cells again resumes
from `last.pt`. `BUDGET_MIN` in the parameters cell trains as many epochs as fit in that many minutes on
the runtime you have (it times the first steps, and after a disconnect counts what was already spent).

Hand in the links to your checkpoint folders in `checkpoint_links.txt` (the file says how).{share}
Lab 3's stand-alone script `malaria_test.py` runs a model file the notebook saves
(`python malaria_test.py --help`). `data_README.md` says where each dataset comes from and how to
point the labs at a copy of your own.

## Data and attributions

The datasets are not part of this repository: they are downloaded when a lab first needs them.

* **MNIST** (`lab8_vanilla.ipynb`, `extra/fc_gan.ipynb`): Y. LeCun, C. Cortes, C. J. C. Burges, the MNIST database of
  handwritten digits. Cite LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document
  recognition", Proc. IEEE 86(11), 1998.
* **Fashion-MNIST** (`lab8_cwgan.ipynb`): H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image
  Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017. Zalando Research, MIT
  licence, Copyright (c) 2017 Zalando SE.
* **IML-Malaria** (`dcgan_malaria.ipynb`): {IML_CITATION}. Not redistributed in this repository (its own
  repository has no licence file): the lab fetches it at run time from github.com/{REPOSITORY}
  (commit {COMMIT[:7]}) and checks every file (`helpers/malaria/fetch.py`, `data_README.md`).
* **i-CLEVR labels** (`extra/cgan_iclevr.ipynb`): the label files (`objects.json`, `train.json`, `test.json`,
  `new_test.json`) of the NYCU Deep Learning course's conditional-generation lab, fetched and checked at run time
  (`data_README.md`); i-CLEVR: A. El-Nouby et al., "Tell, Draw, and Repeat", ICCV 2019, built with the CLEVR
  generator (J. Johnson et al., CVPR 2017). The images are not public: the lab draws a procedural stand-in for
  every label entry (`helpers/iclevr/render.py`), so its numbers are not comparable with the original images'.
* **M5-Malaria**, Lab 3's full dataset: W. Sultani, W. Nawaz, S. Javed, M. S. Danish, A. Saadia, M. Ali,
  "Towards Low-Cost and Efficient Malaria Detection", CVPR 2022 (arXiv:2111.13656). Not redistributed
  (no licence file; cite the paper); download it as `data_README.md` says
  (github.com/intelligentMachines-ITU/LowCostMalariaDetection_CVPR_2022).
"""


# ----------------------------------------------------------------------------- the whole release
def release_files(url: str = REPO_URL, tag: str = REPO_TAG, root: Path = REPO_ROOT) -> dict[str, bytes]:
    """Every file of the release: posix path relative to OUT -> its bytes, sorted by path.

    Args:
        url: the repository students clone (the setup cells, the badges, the README).
        tag: the release's tag.
        root: the repository the release is built from.
    """
    from helpers.course.labs import LABS

    _check_url_and_tag(url, tag)
    files: dict[str, bytes] = {}
    labs = []
    sources = []
    for lab in LABS:
        solution = lab.notebook_path(root)
        if not solution.is_file():
            raise ReleaseError(f"{lab.notebook}: the solution notebook of lab {lab.name!r} is missing in {root}.")
        text, title = release_notebook(solution, lab.notebook, url, tag)
        files[lab.notebook] = text.encode("utf-8")
        labs.append((lab.name, lab.notebook, title))
        sources.append(_code_of_notebook(text))
    for name in COPIED:
        if not (root / name).is_file():
            raise ReleaseError(f"{name} is missing in {root}; the release copies it.")
        files[name] = (root / name).read_bytes()
    sources += [(root / name).read_text(encoding="utf-8") for name in SCRIPTS]
    # Modules the released text files tell students to run (python -m helpers.x) are roots too.
    texts = [(root / name).read_text(encoding="utf-8") for name in COPIED if name.endswith((".md", ".txt"))]
    texts += [files[lab.notebook].decode("utf-8") for lab in LABS]
    commands = sorted({m for text in texts for m in _COMMAND.findall(text)})
    runnable = []
    for module in commands:
        path = _module_path(module, root)
        if path is not None and module not in INSTRUCTOR_MODULES:
            runnable.append(module)
            if path.name == "__init__.py" and (path.parent / "__main__.py").is_file():
                runnable.append(f"{module}.__main__")
    sources += [f"import {m}" for m in runnable]
    modules = helper_modules(sources, root)
    leaked = sorted(set(modules) & set(INSTRUCTOR_MODULES))
    if leaked:
        raise ReleaseError(f"the released notebooks or scripts import course tooling that must not reach students: "
                           f"{', '.join(leaked)}. Move what they need out of it (helpers/course is instructors' code).")
    for path in [*modules.values(), *package_data(modules)]:
        files[path.relative_to(root).as_posix()] = path.read_bytes()
    if MARKER in files:
        raise ReleaseError(f"{MARKER} exists in {root}: it is written by the release builder only; delete it.")
    files[MARKER] = _marker(url, tag).encode("utf-8")
    third_party = {m for src in sources for m in _imported(src)}
    third_party |= {m for path in modules.values() for m in _imported(path.read_text(encoding="utf-8"))}
    files["requirements.txt"] = _requirements(third_party, root).encode("utf-8")
    files[".gitignore"] = _gitignore().encode("utf-8")
    files["README.md"] = _readme(url, tag, labs, list(modules)).encode("utf-8")
    if (root / PYPROJECT).is_file() and not pyproject_problems((root / PYPROJECT).read_text(encoding="utf-8"), files):
        files[PYPROJECT] = (root / PYPROJECT).read_bytes()
    return dict(sorted(files.items()))


def pyproject_problems(text: str, files: dict[str, bytes]) -> list[str]:
    """Why ``pyproject.toml`` (its text) would not install the release ``files`` (empty: it would).

    Checked: the readme, the ``py-modules`` and the ``version`` attribute's module are released files, and
    every data file of a released package matches one of its ``package-data`` patterns.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        return [f"it is not valid TOML ({err})"]
    problems = []
    project, tools = data.get("project", {}), data.get("tool", {}).get("setuptools", {})
    readme = project.get("readme")
    if isinstance(readme, str) and readme not in files:
        problems.append(f"its readme {readme} is not released")
    problems += [f"its module {m} is not released" for m in tools.get("py-modules", []) if f"{m}.py" not in files]
    version = tools.get("dynamic", {}).get("version", {}).get("attr", "")
    module = version.rsplit(".", 1)[0].replace(".", "/")
    if version and f"{module}.py" not in files and f"{module}/__init__.py" not in files:
        problems.append(f"its version attribute {version} is not in a released module")
    patterns = tools.get("package-data", {})
    for rel in files:
        path = PurePosixPath(rel)
        if rel.endswith(".py") or path.parts[0] != "helpers" or rel == MARKER:
            continue
        package = next((p for p in path.parents if f"{p.as_posix()}/__init__.py" in files), None)
        if package is None:
            continue
        covered = any(fnmatch.fnmatch(path.relative_to(anchor).as_posix(), pattern)
                      for name, globs in patterns.items()
                      for anchor in [PurePosixPath(*name.split("."))] if path.is_relative_to(anchor)
                      for pattern in globs)
        if not covered:
            problems.append(f"its package-data does not ship {rel}")
    return problems


def _existing(out: Path) -> dict[str, Path]:
    """The files of OUT that a release owns (not .git, not what its .gitignore ignores)."""
    found = {}
    for path in out.rglob("*"):
        rel = path.relative_to(out).as_posix()
        if rel == ".git" or rel.startswith(".git/") or not (path.is_file() or path.is_symlink()) or _ignored(rel):
            continue
        found[rel] = path
    return found


def stale_files(out: str | Path, files: dict[str, bytes]) -> list[str]:
    """One line per file of ``out`` that differs from ``files``, is missing, or should not be there."""
    out = Path(out)
    if not out.is_dir():
        return [f"{out}: no such folder (build it first)"]
    existing = _existing(out)
    problems = []
    for rel, data in files.items():
        path = out / rel
        if rel not in existing:
            problems.append(f"{rel}: missing")
        elif path.read_bytes() != data:
            problems.append(f"{rel}: differs from what build writes")
    problems += [f"{rel}: not part of the release" for rel in sorted(set(existing) - set(files))]
    return problems


def write_release(out: str | Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into ``out`` and remove the release files that are no longer part of it.

    ``out`` must be missing, empty, or a previous release (it holds ``helpers/_release.py``).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ReleaseError(f"{out} is a file; give a folder for the release.")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ReleaseError(f"{out} is neither empty nor a GAN Lab release (it has no {MARKER}); nothing was written. "
                           f"Give a new or empty folder, or the folder of a previous release.")
    if out.resolve() == REPO_ROOT or REPO_ROOT in out.resolve().parents:
        raise ReleaseError(f"{out} is inside this repository; build the release outside it (e.g. ../gan-lab-release).")
    if out.is_dir():
        for rel in set(_existing(out)) - set(files):
            (out / rel).unlink()
    for rel, data in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
    for folder in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        rel = folder.relative_to(out).as_posix()
        if not rel.startswith(".git") and not _ignored(rel + "/x") and not any(folder.iterdir()):
            folder.rmdir()


def _git(out: Path, *args: str) -> str:
    run = subprocess.run(["git", "-C", str(out), *args], capture_output=True, text=True)
    if run.returncode:
        raise ReleaseError(f"git {' '.join(args)} failed in {out}: {run.stderr.strip() or run.stdout.strip()}")
    return run.stdout


def commit_and_tag(out: str | Path, url: str, tag: str) -> list[str]:
    """Commit OUT's release and tag it (annotated); ``git init`` first when OUT is not a repository.

    Returns:
        The two commands that publish it.
    """
    out = Path(out)
    if not (out / ".git").exists():
        _git(out, "init", "--quiet", "--initial-branch", "main")
    if _git(out, "tag", "--list", tag).strip():
        raise ReleaseError(f"{out} already has the tag {tag}: a published tag must never move. Build with a new --tag.")
    identity = []
    if not subprocess.run(["git", "-C", str(out), "config", "user.email"], capture_output=True, text=True).stdout.strip():
        identity = ["-c", "user.name=GAN Lab release", "-c", "user.email=gan-lab-release@localhost"]
    _git(out, "add", "--all", ".")
    _git(out, *identity, "commit", "--quiet", "--allow-empty", "-m", f"GAN Lab {tag}: student release")
    _git(out, *identity, "tag", "-a", tag, "-m", f"GAN Lab {tag}")
    branch = _git(out, "branch", "--show-current").strip() or "main"
    return [f"git -C {out} remote add origin {url}   # once: the empty repository you created",
            f"git -C {out} push --follow-tags origin {branch}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write the student release into OUT")
    build.add_argument("out", metavar="OUT", help="the release folder (new, empty, or a previous release)")
    build.add_argument("--url", default=REPO_URL, help=f"the repository students clone (default {REPO_URL})")
    build.add_argument("--tag", default=REPO_TAG, help=f"the release tag (default {REPO_TAG})")
    build.add_argument("--git", action="store_true", help="commit and tag the release in OUT (git init if needed)")
    build.add_argument("--check", action="store_true", help="write nothing; exit 1 naming every file that differs")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.check and args.git:
        parser.error("--check writes nothing: leave out --git")
    try:
        files = release_files(args.url, args.tag)
        if args.check:
            problems = stale_files(out, files)
            for line in problems:
                print(f"STALE {line}", file=sys.stderr)
            if problems:
                print(f"Run `python -m helpers.course.release build {out} --url {args.url} --tag {args.tag}`.",
                      file=sys.stderr)
                return 1
            print(f"{out} is the release {args.tag} of {args.url} ({len(files)} files).")
            return 0
        write_release(out, files)
        print(f"Wrote the release {args.tag} of {args.url} to {out} ({len(files)} files).")
        if PYPROJECT not in files and (REPO_ROOT / PYPROJECT).is_file():
            why = pyproject_problems((REPO_ROOT / PYPROJECT).read_text(encoding="utf-8"), files)
            print(f"NOTE {PYPROJECT} is left out: it would not install this release ({'; '.join(why)}). "
                  f"Fix it in this repository and build again to release it.")
        if args.git:
            commands = commit_and_tag(out, args.url, args.tag)
            print(f"Committed and tagged {args.tag} (annotated). To publish it:\n  " + "\n  ".join(commands))
        return 0
    except ReleaseError as err:
        print(f"ERROR {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
