"""The setup cell: cell 1 of every lab notebook, written here once.

    python -m helpers.course.setup_cell            # write the canonical cell into every lab's solution notebook
    python -m helpers.course.setup_cell --check    # exit 1 naming every notebook whose cell 1 differs (a test runs it)

The cell runs before ``helpers`` is importable, so it is plain standard-library Python that students
read. :func:`render_setup_cell` gives its source for one repository URL and tag; the solution
notebooks carry it rendered with :data:`helpers.course.release.REPO_URL` / ``REPO_TAG`` (the one place
those values live), and the release builder renders it again with the values of its build. What the
cell does:

* **locally** it walks up from the working directory to the first folder holding
  ``helpers/__init__.py`` (the repository root, so a notebook opened from a subfolder works), changes
  to it and puts it first on ``sys.path``; with no such folder, an installed ``helpers``
  (``pip install -e .``, the grader's process) is used as it is;
* **in Colab** (``google.colab`` imported) it clones the release, ``git clone --depth 1 --branch TAG
  URL gan-lab``, into the folder the notebook started in. A clone of another tag already there is
  renamed aside (``gan-lab-<its tag>``), never deleted: it may hold a student's checkpoints. The
  clone's version marker (``helpers/_release.py``, written by the release builder) must name the tag.
  ``git ls-remote --tags URL`` (15 s at most, silent on failure) tells whether a newer version tag
  exists; if so the cell says how to move to it;
* any failure stops the notebook with :class:`SetupFailed`, whose ``_render_traceback_`` makes
  IPython show its message (the command tried, git's error output, what to do) and no traceback;
  the cell errs, so *Run all* stops there.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from helpers.course.labs import LABS, REPO_ROOT

SETUP_CELL_INDEX = 1                  # cell 1 of every lab notebook (cell 0 is its title)
MARKER = "helpers/_release.py"        # the version marker of a release: the cell reads its REPO_TAG line

_TEMPLATE = r"""# Setup cell: run it first. It makes the course code (the helpers/ folder) importable: locally from the
# GAN Lab folder this notebook is in; in Colab from a copy of the course repository at REPO_TAG that it
# fetches into the runtime. When a newer release exists, this cell says so and how to move to it.
import os, re, subprocess, sys

REPO_URL = "@URL@"
REPO_TAG = "@TAG@"
GIT_ENV = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # git fails instead of asking for a password


class SetupFailed(Exception):
    def _render_traceback_(self):  # IPython shows this message, no traceback
        return [f"SETUP FAILED: {self}"]


def _release_of(root):  # the tag in root/helpers/_release.py, or None
    try:
        with open(os.path.join(root, "helpers", "_release.py")) as f:
            return re.search(r'^REPO_TAG = "(.*)"$', f.read(), re.M).group(1)
    except (OSError, AttributeError):
        return None


def _version(tag):  # "v1.2.0" -> (1, 2, 0); None for a tag of another form
    m = re.fullmatch(r"v?(\d+(?:\.\d+)*)", tag)
    return tuple(int(n) for n in m.group(1).split(".")) if m else None


colab = "google.colab" in sys.modules
root = os.getcwd()  # the first folder from here upwards that holds helpers/__init__.py
while root and not os.path.isfile(os.path.join(root, "helpers", "__init__.py")):
    root = None if os.path.dirname(root) == root else os.path.dirname(root)
if colab and (root is None or _release_of(root) != REPO_TAG):
    # Colab: the course code at REPO_TAG in ./gan-lab; a copy of another release is moved aside (not deleted).
    root = os.path.join(os.path.dirname(root) if root else os.getcwd(), "gan-lab")
    if os.path.isdir(root) and _release_of(root) != REPO_TAG:
        aside = f"{root}-{_release_of(root) or 'old'}"
        while os.path.exists(aside):
            aside += "-old"
        os.rename(root, aside)
        print(f"Moved the course code of release {_release_of(aside)} aside to {aside} (your files are kept).")
    if not os.path.isdir(root):
        cmd = ["git", "clone", "--quiet", "--depth", "1", "--branch", REPO_TAG, REPO_URL, root]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=GIT_ENV)
            error = (done.stderr.strip() or f"exit status {done.returncode}") if done.returncode else ""
        except (OSError, subprocess.SubprocessError) as err:
            error = f"{type(err).__name__}: {err}"
        if error:
            raise SetupFailed(
                f"could not fetch the course code.\n  tried: {' '.join(cmd)}\n  error: {error}\n"
                "What to do: check with your instructor that REPO_URL and REPO_TAG at the top of this cell "
                "are right (the tag must exist in that repository) and that this runtime is online; then "
                "Runtime > Restart session and run the notebook again.")
    if _release_of(root) != REPO_TAG:
        raise SetupFailed(f"{root} holds release {_release_of(root)} of the course code, not {REPO_TAG}.\n"
                          "What to do: check REPO_TAG with your instructor, then Runtime > Restart session "
                          "and run the notebook again.")
    for name in [m for m in sys.modules if m.split(".")[0] in ("helpers", "malaria_test")]:
        del sys.modules[name]  # imported from another release: import them again from root
if root is None:
    try:
        import helpers  # an installed copy (pip install -e .) will do
    except ImportError:
        raise SetupFailed(f"no helpers/ folder in {os.getcwd()} or above it.\nWhat to do: open this "
                          f"notebook from the GAN Lab folder (git clone --branch {REPO_TAG} {REPO_URL}), "
                          "or in Colab.") from None
else:
    os.chdir(root)
    if root not in sys.path:
        sys.path.insert(0, root)
    if _release_of(root) not in (None, REPO_TAG):
        print(f"NOTE: {root} holds release {_release_of(root)} of the course code, this notebook "
              f"{REPO_TAG}. If a cell fails, run `git checkout {REPO_TAG}` in that folder.")
    elif _release_of(root):
        print(f"Course code: release {REPO_TAG} in {root}")
if colab:  # is there a newer release? Best effort: silent when it cannot tell.
    try:
        refs = subprocess.run(["git", "ls-remote", "--tags", REPO_URL], capture_output=True, text=True,
                              timeout=15, env=GIT_ENV).stdout
    except (OSError, subprocess.SubprocessError):
        refs = ""
    newer = [t for t in re.findall(r"refs/tags/([^\s^]+)$", refs, re.M)
             if _version(t) and _version(REPO_TAG) and _version(t) > _version(REPO_TAG)]
    if newer:
        latest = max(newer, key=_version)
        print(f"NOTE: a newer release of the course code exists: {latest} (this notebook uses "
              f"{REPO_TAG}). To move to it, set REPO_TAG = \"{latest}\" at the top of this cell, then "
              "Runtime > Restart session and run the notebook again: your code in this notebook stays, "
              "and so do your checkpoints.")"""

_SAFE = re.compile(r"[^\"\\\s]+")     # what may sit between the cell's double quotes


class SetupCellError(ValueError):
    """A notebook whose cell 1 is not a setup cell (the message names it and says what to do)."""


def pinned() -> tuple[str, str]:
    """``(REPO_URL, REPO_TAG)`` of :mod:`helpers.course.release`, the one place they live.

    Read at call time: the release builder imports this module, so this module cannot import it at the top.
    """
    from helpers.course import release

    return release.REPO_URL, release.REPO_TAG


def render_setup_cell(url: str | None = None, tag: str | None = None) -> str:
    """The source of the setup cell for the repository ``url`` at ``tag``.

    Args:
        url: what ``git clone`` fetches (an https URL, or a path / ``file://`` URL in tests);
            default ``helpers.course.release.REPO_URL``.
        tag: the release tag the cell pins; default ``helpers.course.release.REPO_TAG``.

    Returns:
        The cell's source (no trailing newline, as notebooks store it).
    """
    url, tag = (pinned()[0] if url is None else url), (pinned()[1] if tag is None else tag)
    for name, value in (("url", url), ("tag", tag)):
        if not _SAFE.fullmatch(value):
            raise ValueError(f"the {name} {value!r} cannot go into the setup cell: it must be non-empty, "
                             f"without spaces, quotes or backslashes.")
    return _TEMPLATE.replace("@URL@", url).replace("@TAG@", tag)


def is_setup_cell(cell: nbformat.NotebookNode) -> bool:
    """True for a code cell that is a setup cell (this module's or the earlier one), whatever its values."""
    return cell.cell_type == "code" and cell.source.startswith("# Setup cell")


def _cell_one(nb: nbformat.NotebookNode, where: str) -> nbformat.NotebookNode:
    if len(nb.cells) <= SETUP_CELL_INDEX or not is_setup_cell(nb.cells[SETUP_CELL_INDEX]):
        raise SetupCellError(f"{where}: cell {SETUP_CELL_INDEX} is not the setup cell (a code cell starting "
                             f"with '# Setup cell'); put the setup cell there, right after the title.")
    return nb.cells[SETUP_CELL_INDEX]


def lab_notebook_paths(root: str | Path = REPO_ROOT) -> list[Path]:
    """The solution notebooks of every lab of ``LABS`` under ``root``."""
    return [lab.notebook_path(root) for lab in LABS]


def setup_cell_drift(paths: list[str | Path] | None = None, url: str | None = None, tag: str | None = None) -> list[str]:
    """One line per notebook whose cell 1 is not the canonical setup cell for ``url`` and ``tag``.

    Args:
        paths: the notebooks; default the solution notebooks of ``LABS``.
        url, tag: the values the cell must carry; default those of ``helpers.course.release``.
    """
    url, tag = (pinned()[0] if url is None else url), (pinned()[1] if tag is None else tag)
    want = render_setup_cell(url, tag)
    problems = []
    for path in map(Path, paths if paths is not None else lab_notebook_paths()):
        try:
            cell = _cell_one(nbformat.read(path, as_version=4), path.name)
        except SetupCellError as err:
            problems.append(str(err))
            continue
        if cell.source != want:
            problems.append(f"{path.name}: cell {SETUP_CELL_INDEX} differs from the canonical setup cell "
                            f"(helpers/course/setup_cell.py, {url} at {tag}); run `python -m helpers.course.setup_cell`")
    return problems


def sync_setup_cells(paths: list[str | Path] | None = None, url: str | None = None, tag: str | None = None) -> list[Path]:
    """Write the canonical setup cell into cell 1 of each notebook; nothing else of the notebook changes.

    Read-modify-write with nbformat: only cell 1's source is replaced (its id, metadata and outputs stay).
    A notebook whose cell 1 is not a setup cell is left alone and raises :class:`SetupCellError`
    (checked for every notebook before the first is written).

    Args:
        paths: the notebooks; default the solution notebooks of ``LABS``.
        url, tag: the values the cell carries; default those of ``helpers.course.release``.

    Returns:
        The notebooks that changed (an up-to-date notebook is not rewritten).
    """
    want = render_setup_cell(url, tag)
    paths = [Path(p) for p in (paths if paths is not None else lab_notebook_paths())]
    notebooks = [(path, nbformat.read(path, as_version=4)) for path in paths]
    cells = [_cell_one(nb, path.name) for path, nb in notebooks]
    changed = []
    for (path, nb), cell in zip(notebooks, cells):
        if cell.source != want:
            cell.source = want
            nbformat.write(nb, path)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming every notebook that differs")
    parser.add_argument("notebooks", nargs="*", help="default: the solution notebooks of helpers.course.labs")
    args = parser.parse_args(argv)
    paths = args.notebooks or None
    if args.check:
        problems = setup_cell_drift(paths)
        for line in problems:
            print(f"DRIFT {line}", file=sys.stderr)
        if not problems:
            print("The setup cells are the canonical one.")
        return 1 if problems else 0
    try:
        changed = sync_setup_cells(paths)
    except SetupCellError as err:
        print(f"ERROR {err}", file=sys.stderr)
        return 1
    for path in changed:
        print(f"wrote cell {SETUP_CELL_INDEX} of {path}")
    print(f"{len(changed)} notebook(s) changed; regenerate the templates: python -m helpers.course.templates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
