"""Run a lab notebook top to bottom in a fresh kernel, headless, and say where its outputs are.

    python -m helpers.course.run_notebook lab8_vanilla.ipynb --profile quick

The executed copy goes to ``outputs/executed/<name>.<profile>.ipynb``. ``--inplace`` writes the
outputs back into the notebook itself, which is how the committed figures are made, and puts a run
record in its title cell: which profile ran, on what machine, when, for how long
(:mod:`helpers.course.run_record`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from helpers.course.labs import LABS
from helpers.course.run_record import run_record, with_run_record
from helpers.env import PROFILES, settings, shown_path

REPO_ROOT = Path(__file__).resolve().parents[2]


def execute_notebook(
    path: str | os.PathLike,
    profile: str,
    timeout: int = 3600,
    extra_cells: list[str] | None = None,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
) -> nbformat.NotebookNode:
    """Execute a notebook in a fresh kernel with ``GANLAB_PROFILE=profile``.

    Args:
        path: the notebook.
        profile: ``smoke``, ``quick`` or ``full``.
        timeout: seconds allowed per cell.
        extra_cells: code appended as cells before running (tests use this to call ``generate``).
        env: environment variables for the kernel, on top of this process's.
        cwd: working folder of the kernel (default: the repository root).

    Returns:
        The executed notebook; a failing cell raises ``CellExecutionError`` naming the cell.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}.")
    nb = nbformat.read(path, as_version=4)
    for src in extra_cells or []:
        nb.cells.append(nbformat.v4.new_code_cell(src))
    old = dict(os.environ)
    os.environ.update({"GANLAB_PROFILE": profile, "PYTHONUNBUFFERED": "1", **(env or {})})
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(cwd or REPO_ROOT)}})
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def keep_outputs(nb: nbformat.NotebookNode, profile: str, minutes: float, results: str | None = None) -> None:
    """Make an executed notebook the committed one: its run record in the title cell (cell 0), no widget state.

    Args:
        nb: the executed notebook, changed in place.
        profile: the profile it ran in.
        minutes: how long the whole run took.
        results: the benchmark report of this run, when a benchmark ran it.
    """
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        raise ValueError("the notebook's first cell is not its Markdown title: nowhere to put the run record.")
    nb.cells[0].source = with_run_record(nb.cells[0].source, run_record(profile, minutes, results))
    nb.metadata.pop("widgets", None)  # widget state of this run: not part of the notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", help="e.g. lab8_vanilla.ipynb")
    parser.add_argument("--profile", default=settings().profile or "quick", choices=PROFILES)
    parser.add_argument("--inplace", action="store_true",
                        help="write the outputs into the notebook itself, with a run record in its title cell")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds allowed per cell")
    args = parser.parse_args(argv)

    src = Path(args.notebook)
    if not src.is_file():
        parser.error(f"no notebook at {src}")
    started = time.perf_counter()
    print(f"Running {src} in the {args.profile} profile (fresh kernel, headless)...", flush=True)
    try:
        nb = execute_notebook(src, args.profile, timeout=args.timeout)
    except CellExecutionError as err:
        print(f"FAILED: {src} stopped at a cell with an error:\n{err}", file=sys.stderr)
        return 1
    dst = src if args.inplace else REPO_ROOT / "outputs" / "executed" / f"{src.stem}.{args.profile}.ipynb"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if args.inplace:
        keep_outputs(nb, args.profile, (time.perf_counter() - started) / 60)
    else:
        nb.metadata.pop("widgets", None)  # widget state of this run: not part of the notebook
    nbformat.write(nb, dst)
    lab = next((lab.name for lab in LABS if lab.notebook_path().resolve() == src.resolve()), src.stem)
    out_dir = (settings().output or REPO_ROOT / "outputs") / f"{lab}-{args.profile}"
    print(f"Done in {time.perf_counter() - started:.0f} s.")
    print(f"Executed notebook: {shown_path(dst)}")
    print(f"Figures and sample grids (PNG): {shown_path(out_dir)}")
    epochs = sorted(out_dir.glob("samples_epoch_*.png"))
    if epochs:
        print(f"Samples after the last epoch: {shown_path(epochs[-1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
