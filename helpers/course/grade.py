"""Grade a submitted lab notebook: run its code in a grader process that calls the checks itself.

    python -m helpers.course.grade SUBMISSION.ipynb [--lab vanilla|cwgan|malaria|fc|iclevr] [--out DIR]
                                   [--timeout S] [--checkpoint last.pt]
    python -m helpers.course.grade FOLDER [--jobs N] [--out DIR]        # a whole class (helpers.course.grade_class)
    python -m helpers.course.grade merge DIR/class_table_<lab>.csv HAND.csv   # add hand-given scores

writes ``DIR/<stem>.grade.json`` (the record below) and ``DIR/<stem>.grade.md`` (default ``DIR``:
``./grades``).

**Grading runs the student's code.** Run it in a disposable environment (a throw-away container or
VM, or at least a user account that owns nothing of value). The precautions below stop the hostile
submissions of the tests (fake pass lines, replaced or patched checks, copied training images, hangs,
crashes, files touched outside the scratch folder); they are not a sandbox against code that patches
torch itself or reads the grader's memory.

What happens (:func:`grade`):

1. A scratch folder: ``work/`` (the submission's working folder, with a copy of ``helpers/`` and the
   repository's top-level ``*.py`` for the subprocesses a notebook starts, its own
   ``GANLAB_CHECKPOINTS`` and ``GANLAB_OUTPUT``), ``guard/`` beside it with sentinel files, and a
   results folder elsewhere in the temporary directory.
2. ``python -m helpers.course.grade_runner`` starts in ``work/`` in its own process group, in the
   ``smoke`` profile, with one time limit for everything (``--timeout``; at the limit the whole
   process group is killed). Its job goes over stdin: the submission's code cells (``PROFILE =
   "smoke"`` injected after the parameters cell), the hidden tests read from the lab's *solution*
   notebook (``### BEGIN HIDDEN TESTS`` regions; never from the submission), and a random nonce
   that names the results file. The runner imports helpers first, runs the cells, puts back any
   helpers it finds changed (tampering), then calls every registered check itself on the
   submission's objects (see :mod:`helpers.course.grade_runner`).
3. The guard folder, the submission, the repository's ``helpers/`` and the data folder are listed
   (size and modification time) before and after; a change there, or to the scratch copy of
   ``helpers/``, is reported.
4. Points come from one table, ``helpers.course.labs.POINTS``. A submission gets no credit (0 points,
   with the reason under ``problems``) when its process timed out or died, when it touched files
   outside its scratch folder, when it tampered with ``helpers``, or when its ``generate`` returned
   copies of training images.

The report (``<stem>.grade.json``)::

    {"submission": path, "student": stem, "lab": name, "points": float, "max_points": float,
     "all_passed": bool, "summary": str,
     "checks": [{"id", "title", "kind": "visible"|"hidden"|"contract", "points", "max_points",
                 "status": "passed"|"failed"|"not implemented"|"error"|"not run", "message"}],
     "contract": {"status", "message", "items": [{"id", "requirement", "status", "ok", "message", "hint"}]},
     "by_hand": [{"id", "cell", "title", "points"}],  # answer cells (ANSWER_POINTS), graded by hand
     "problems": [str], "tampering": [str],
     "execution": {"code_cells", "cells_run", "stopped": None|"timeout"|"process died", "stopped_cell_number",
                   "stopped_phase", "errored_cells": [{"cell", "ename", "evalue", "todo"}], "notes", "exit_code"},
     "integrity": {"deleted", "changed", "added", "helpers_copy", "watched_files", "watched"},
     "grader_errors": [str], "profile": "smoke", "timeout_s", "duration_s", "workdir", "output_tail"}

The grader never fails on a submission: a crash, a hang or an unreadable notebook ends up in the
report, and the exit code is 0; it is non-zero only for usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from pathlib import Path
from typing import Any

import nbformat

from helpers.course import classtable, grade_checkpoint, grade_class
from helpers.env import settings
from helpers.course.labs import (ANSWER_POINTS, LABS, POINTS, REPO_ROOT, answer_cell_id, lab_named, lab_names,
                                lab_points)
from helpers.course.grade_runner import PROGRESS_NAME, SMOKE_CELL
from helpers.course.regions import _BEGIN, _BEGIN_HIDDEN, _END_HIDDEN, HIDDEN_TEST_ID

DEFAULT_TIMEOUT = 900
MAX_SNAPSHOT_ENTRIES = 50_000


# ----------------------------------------------------------------------------- which lab, which tests
def infer_lab(submission: str | Path, nb: nbformat.NotebookNode | None = None) -> str | None:
    """The lab of a submission: from its file name (``lab8_cwgan_jdoe.ipynb``), else its ``setup_lab`` call."""
    stem = Path(submission).stem.lower()
    for lab in LABS:
        if Path(lab.notebook).stem in stem:
            return lab.name
    found = [name for name in lab_names() if name in stem]
    if len(found) == 1:
        return found[0]
    if nb is not None:
        for cell in nb.cells:
            m = re.search(r"setup_lab\(\s*[\"'](\w+)[\"']", cell.get("source", "")) if cell.cell_type == "code" else None
            if m and m.group(1) in lab_names():
                return m.group(1)
    return None


def hidden_tests(notebook: str | Path) -> list[dict[str, str]]:
    """The hidden tests of a solution notebook: ``[{"id", "title", "source", "cell"}]``, in order.

    A hidden test is a ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region of a code cell
    whose first line is ``# hidden test <lab>.<name>: <title>``; ``<lab>.<name>`` is its row in POINTS.
    """
    nb = nbformat.read(notebook, as_version=4)
    tests = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        region: list[str] | None = None
        for line in cell.source.split("\n"):
            if _BEGIN_HIDDEN.match(line):
                region = []
            elif _END_HIDDEN.match(line) and region is not None:
                body = textwrap.dedent("\n".join(region))
                m = HIDDEN_TEST_ID.match(body.strip().split("\n", 1)[0].strip())
                if not m:
                    raise ValueError(f"{Path(notebook).name} cell {index}: a hidden-tests region must start with "
                                     f"'# hidden test <lab>.<name>: <title>'")
                tests.append({"id": m.group("id"), "title": m.group("title") or m.group("id"), "source": body,
                              "cell": index})
                region = None
            elif region is not None:
                region.append(line)
    return tests


def _question(cells: list, index: int) -> str:
    """The question answer cell ``index`` answers, from the markdown cell right before it.

    Its last ``### Question: ...`` heading (the text after ``Question:``), else its last heading, else its
    last line ending in ``?``; without such a cell, the text of the answer cell before its region.
    """
    before = next((c for c in reversed(cells[:index]) if c.cell_type == "markdown"), None)
    lines = [ln.strip() for ln in before.source.split("\n") if ln.strip()] if before is not None else []
    headings = [ln.lstrip("#").strip() for ln in lines if ln.startswith("#")]
    asked = [h for h in headings if h.lower().startswith("question")]
    if asked:
        text = asked[-1]
        return text.split(":", 1)[1].strip() if re.match(r"(?i)question\s*:", text) else text
    if headings or any(ln.endswith("?") for ln in lines):
        return headings[-1] if headings else [ln for ln in lines if ln.endswith("?")][-1]
    own = cells[index].source.split("\n")
    return next((ln.lstrip("#").strip() for ln in own if ln.strip() and not _BEGIN.match(ln)), "")


def answer_cells(solution: nbformat.NotebookNode, submission: nbformat.NotebookNode) -> list[dict[str, Any]]:
    """The answer cells of the solution (markdown cells with a ``### BEGIN SOLUTION`` region): graded by hand.

    One record per cell, in notebook order: ``id`` is its row in ``ANSWER_POINTS`` (the cell with id
    ``<lab>-answer-<name>`` is the row ``<lab>.answer_<name>``; a cell in no row keeps its cell id), the
    column of the hand-score CSV that ``grade merge`` reads; ``cell`` the 1-based position of the cell
    with the same id in the submission (None if gone); ``title`` the question it answers (see
    :func:`_question`); ``points`` its points in ``ANSWER_POINTS`` (None if it has no row).
    """
    positions = {c.get("id"): i + 1 for i, c in enumerate(submission.cells)}
    rows = {answer_cell_id(answer): answer for answer in ANSWER_POINTS}
    found = []
    for index, cell in enumerate(solution.cells):
        if cell.cell_type == "markdown" and any(_BEGIN.match(line) for line in cell.source.split("\n")):
            answer = rows.get(cell.get("id"))
            found.append({"id": answer or cell.get("id"), "cell": positions.get(cell.get("id")),
                          "title": _question(solution.cells, index)[:200],
                          "points": ANSWER_POINTS.get(answer) if answer else None})
    return found


def code_cells(nb: nbformat.NotebookNode) -> tuple[list[dict[str, Any]], list[str]]:
    """The cells the runner executes: ``{"cell": 1-based index, "source"}``, the smoke profile pinned."""
    cells, notes = [], []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cells.append({"cell": i + 1, "source": cell.source})
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags and re.search(r"^PROFILE\s*=", cell.source, re.M):
            cells.append({"cell": i + 1, "source": SMOKE_CELL, "injected": True})
            notes.append(f'`{SMOKE_CELL.split("  #")[0]}` injected after cell {i + 1} (the parameters cell).')
    return cells, notes


# ----------------------------------------------------------------------------- files outside the work folder
def snapshot(paths: list[Path]) -> dict[str, Any]:
    """``{file: [size, mtime_ns]}`` under ``paths`` (``__pycache__`` and ``.git`` skipped)."""
    files: dict[str, list[int]] = {}
    truncated = False
    for root in paths:
        root = Path(root)
        if root.is_file():
            st = root.stat()
            files[str(root)] = [st.st_size, st.st_mtime_ns]
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", ".git"))
            for name in sorted(filenames):
                if len(files) >= MAX_SNAPSHOT_ENTRIES:
                    truncated = True
                    break
                path = Path(dirpath) / name
                try:
                    st = path.lstat()
                except OSError:
                    continue
                files[str(path)] = [st.st_size, st.st_mtime_ns]
    return {"files": files, "truncated": truncated}


def compare_snapshots(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    """Files deleted, changed and added between two snapshots."""
    b, a = before["files"], after["files"]
    return {"deleted": sorted(set(b) - set(a)), "changed": sorted(p for p in set(b) & set(a) if b[p] != a[p]),
            "added": sorted(set(a) - set(b))}


def _make_guard(guard: Path) -> None:
    (guard / "nested").mkdir(parents=True, exist_ok=True)
    (guard / "SENTINEL.txt").write_text("helpers.course.grade: a submission must not touch this file.\n")
    (guard / "nested" / "sentinel.bin").write_bytes(bytes(range(256)))


def _data_dir() -> str | None:
    if settings().data is not None:
        return str(settings().data)
    for candidate in (REPO_ROOT / "data", REPO_ROOT.parent / "shared" / "data"):  # local, course machines
        if candidate.is_dir():
            return str(candidate)
    return None


def _runner_env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GANLAB_PROFILE": "smoke", "GANLAB_CHECKPOINTS": str(work / "checkpoints"),
                "GANLAB_OUTPUT": str(work / "outputs"), "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"})
    env.setdefault("GANLAB_OFFLINE", "1")
    data = _data_dir()
    if data:
        env["GANLAB_DATA"] = data
    env.pop("PYTHONPATH", None)  # the runner imports the scratch copy of helpers/ (its working folder)
    return env


# ----------------------------------------------------------------------------- running the grader process
def _run_runner(job: dict, work: Path, timeout: float, log: Path) -> dict[str, Any]:
    """Start the runner, hand it its job on stdin, wait at most ``timeout`` s, kill its group at the limit."""
    info: dict[str, Any] = {"stopped": None, "exit_code": None}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "helpers.course.grade_runner"], cwd=work,
                                env=_runner_env(work), stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.stdin.write((json.dumps(job) + "\n").encode("utf-8"))
            proc.stdin.close()
        except OSError:  # the runner died before reading its job
            pass
        try:
            info["exit_code"] = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            info["stopped"] = "timeout"
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the runner and anything it started
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
    if info["stopped"] is None and info["exit_code"] != 0:
        info["stopped"] = "process died"
    return info


def _last_progress(results_dir: Path) -> dict[str, Any]:
    try:
        lines = (results_dir / PROGRESS_NAME).read_text(encoding="utf-8").strip().splitlines()
        return json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError):
        return {}


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_bytes()[-chars:].decode("utf-8", errors="replace")
    except OSError:
        return ""


# ----------------------------------------------------------------------------- the report
def _empty_report(submission: Path, lab: str | None, timeout: float) -> dict[str, Any]:
    return {
        "submission": str(submission), "student": submission.stem, "lab": lab, "points": 0.0, "max_points": 0.0,
        "all_passed": False, "summary": "", "checks": [],
        "contract": {"status": "not run", "message": "", "items": []}, "by_hand": [], "problems": [],
        "tampering": [], "profile": "smoke", "timeout_s": timeout,
        "execution": {"code_cells": 0, "cells_run": 0, "stopped": None, "errored_cells": [], "notes": [],
                      "exit_code": None},
        "integrity": {"deleted": [], "changed": [], "added": [], "helpers_copy": [], "watched_files": 0},
        "grader_errors": [], "workdir": None, "duration_s": 0.0, "output_tail": "",
    }


def _checks_with_points(lab: str, results: dict | None, hidden: list[dict], why_not_run: str) -> list[dict[str, Any]]:
    """One entry per graded check of the lab (visible, contract, hidden), in that order, with its points."""
    module = lab_named(lab).checks_module()
    expected = [(r.id, r.title, "visible") for r in module.GRADED]
    expected.append((f"{lab}.generate", "the generate contract", "contract"))
    expected += [(t["id"], t["title"], "hidden") for t in hidden]
    got = {c["id"]: c for c in (results or {}).get("checks", [])}
    if results is not None:
        contract = results.get("contract", {})
        got[f"{lab}.generate"] = {"status": contract.get("status", "not run"), "message": contract.get("message", "")}
    entries = []
    for check_id, title, kind in expected:
        found = got.get(check_id, {"status": "not run", "message": why_not_run})
        worth = float(POINTS[check_id])
        entries.append({"id": check_id, "title": title, "kind": kind, "points": worth if found["status"] == "passed"
                        else 0.0, "max_points": worth, "status": found["status"], "message": found["message"]})
    return entries


def _problems(report: dict[str, Any]) -> list[str]:
    ex, problems = report["execution"], []
    where = (f"in cell {ex['stopped_cell_number']}" if ex.get("stopped_cell_number")
             else f"while {ex.get('stopped_phase') or 'starting'}")
    if ex.get("stopped") == "timeout":
        problems.append(f"timed out after {report['timeout_s']:g} s {where}")
    elif ex.get("stopped") == "process died":
        problems.append(f"the process died (exit code {ex.get('exit_code')}: a crash, an exit or out of memory) {where}")
    elif ex.get("stopped"):
        problems.append(f"could not grade: {ex['stopped']}")
    integ = report["integrity"]
    outside = integ["deleted"] + integ["changed"] + integ["added"]
    if outside:
        problems.append(f"touched {len(outside)} file(s) outside its scratch folder "
                        f"({len(integ['deleted'])} deleted, {len(integ['changed'])} changed, {len(integ['added'])} added)")
    if integ["helpers_copy"]:
        problems.append(f"changed the grader's copy of helpers/ ({len(integ['helpers_copy'])} file(s))")
    if report["tampering"]:
        problems.append(f"tampered with helpers or builtins ({len(report['tampering'])} change(s), first: "
                        f"{report['tampering'][0]})")
    copies = next((i for i in report["contract"].get("items", []) if i["id"] == "not_copies" and not i["ok"]
                   and i["status"] != "not run"), None)
    if copies:
        problems.append(f"generate returned copies of training images: {copies['message']}")
    return problems


def _summary(report: dict[str, Any]) -> str:
    checks = report["checks"]
    parts = [f"{report['points']:g}/{report['max_points']:g} points",
             f"{sum(c['status'] == 'passed' for c in checks)}/{len(checks)} checks passed"]
    first_bad = next((c for c in checks if c["status"] != "passed"), None)
    if first_bad:
        parts.append(f"first not passed: {first_bad['id']} ({first_bad['status']})")
    if report["problems"]:
        parts.append("no credit: " + report["problems"][0])
    return "; ".join(parts)


def _md(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", "<br>")


def render_markdown(report: dict[str, Any]) -> str:
    """The human-readable report."""
    icon = {"passed": "✓", "failed": "✗", "not implemented": "✗", "error": "✗"}
    lines = [f"# Grading report: `{Path(report['submission']).name}` ({report['lab']} lab)", "",
             f"**{report['points']:g} / {report['max_points']:g} automatic points**: "
             f"{report['summary'].split('; ', 1)[-1]}.", ""]
    if report["problems"]:
        lines += ["## No credit", "", *[f"- {_md(p)}" for p in report["problems"]], ""]
    lines += ["## Checks (called by the grader on the submission's objects)", "",
              "| check | kind | result | points | details |", "|---|---|---|---|---|"]
    for c in report["checks"]:
        lines.append(f"| `{c['id']}` {_md(c['title'])} | {c['kind']} | {icon.get(c['status'], '–')} {c['status']} | "
                     f"{c['points']:g}/{c['max_points']:g} | {_md(c['message'][:600])} |")
    contract = report["contract"]
    lines += ["", f"## The `generate` contract: {contract['status']}", ""]
    if contract.get("message"):
        lines += [_md(contract["message"]), ""]
    if contract.get("items"):
        lines += ["| requirement | result | details |", "|---|---|---|"]
        lines += [f"| {_md(i['requirement'])} | {icon.get(i['status'], '–')} {i['status']} | {_md(i['message'])} |"
                  for i in contract["items"]]
    lines += ["", "## To grade by hand", ""]
    lines += [f"- cell {a['cell'] or '(missing)'}: {_md(a['title'])} (`{a['id']}`), "
              + (f"{a['points']:g} points" if a.get("points") is not None else "no points in ANSWER_POINTS")
              for a in report["by_hand"]] or ["No answer cells in this lab."]
    by_hand = sum(a["points"] or 0 for a in report["by_hand"])
    if by_hand:
        lines.append(f"\nUp to {by_hand:g} more points by hand: `python -m helpers.course.grade merge` adds them.")
    ex = report["execution"]
    lines += ["", "## Execution", "",
              f"- profile `smoke`, time limit {report['timeout_s']:g} s, took {report['duration_s']} s",
              f"- ran {ex['cells_run']} of {ex['code_cells']} code cells"
              + (f"; stopped: {ex['stopped']}" if ex.get("stopped") else "")]
    lines += [f"- {note}" for note in ex.get("notes", [])]
    for e in ex.get("errored_cells", []):
        lines.append(f"- cell {e['cell']} raised `{e['ename']}`: {_md(e['evalue'][:300])}")
    if report["tampering"]:
        lines += ["", "## Tampering found (and undone before the checks)", ""]
        lines += [f"- {_md(t)}" for t in report["tampering"][:50]]
    integ = report["integrity"]
    lines += ["", "## Files outside the submission's folder", ""]
    if not any(integ[k] for k in ("deleted", "changed", "added", "helpers_copy")):
        lines.append(f"No change in the {integ['watched_files']} files watched.")
    for key in ("deleted", "changed", "added"):
        lines += [f"- {key}: `{p}`" for p in integ[key][:50]]
    lines += [f"- changed in the grader's copy of helpers/: `{p}`" for p in integ["helpers_copy"][:50]]
    if report["grader_errors"]:
        lines += ["", "## Grader errors", "", *[f"- {_md(e[:1000])}" for e in report["grader_errors"]]]
    lines += ["", "_Nothing the notebook printed counts: the grader ran the checks itself. Grading runs the "
              "submitted code: run it in a disposable environment._", ""]
    return "\n".join(lines)


def write_reports(report: dict[str, Any], out_dir: str | Path) -> dict[str, str]:
    """Write ``<stem>.grade.json`` and ``<stem>.grade.md`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{report['student']}.grade.json", "markdown": out / f"{report['student']}.grade.md"}
    report["reports"] = {k: str(v) for k, v in paths.items()}
    paths["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    paths["markdown"].write_text(render_markdown(report), encoding="utf-8")
    return report["reports"]


class _Stop(Exception):
    """Nothing more to run: the report already says why."""


def grade(submission: str | Path, lab: str | None = None, out_dir: str | Path | None = None,
          timeout: float = DEFAULT_TIMEOUT, watch: list[str | Path] | None = None, keep_workdir: bool = False,
          scratch: str | Path | None = None) -> dict[str, Any]:
    """Grade one submission in its own scratch folder and grader process (see the module docstring).

    Args:
        submission: the notebook handed in.
        lab: a lab name of ``helpers.course.labs``; default: told from the file name or ``setup_lab``.
        out_dir: where the reports go; ``None`` writes nothing.
        timeout: seconds for the whole run (cells and checks together).
        watch: files and folders outside the scratch folder to watch, besides the sentinel folder;
            ``None`` means the submission file, the repository's ``helpers/`` and the data folder.
        keep_workdir: keep the scratch folder (its path is in the report) instead of deleting it.
        scratch: an empty folder to work in (a folder loop gives each submission its own); default a
            new temporary folder. It is deleted afterwards unless ``keep_workdir``.

    Returns:
        The report as a dict (also written as JSON). Never raises for anything a submission does.
    """
    started = time.monotonic()
    submission = Path(submission).resolve()
    report = _empty_report(submission, lab, timeout)
    tmp = Path(scratch) if scratch is not None else Path(tempfile.mkdtemp(prefix="ganlab-grade-"))
    tmp.mkdir(parents=True, exist_ok=True)
    results_dir = Path(tempfile.mkdtemp(prefix="r-", dir=tmp))
    try:
        work, guard = tmp / "work", tmp / "guard"
        work.mkdir()
        _make_guard(guard)
        report["workdir"] = str(work)
        try:
            nb = nbformat.read(submission, as_version=4)
        except Exception as err:  # noqa: BLE001 - not JSON, not a notebook...
            report["problems"].append(f"unreadable notebook: {type(err).__name__}: {err}"[:500])
            raise _Stop from None
        lab = lab or infer_lab(submission, nb)
        report["lab"] = lab
        if lab not in lab_names():
            report["problems"].append(f"cannot tell which lab this is ({lab!r}); pass --lab {'|'.join(lab_names())}")
            raise _Stop
        record = lab_named(lab)
        report["max_points"] = float(sum(lab_points(lab).values()))
        solution = nbformat.read(record.notebook_path(), as_version=4)
        hidden = hidden_tests(record.notebook_path())
        report["by_hand"] = answer_cells(solution, nb)
        report["checks"] = _checks_with_points(lab, None, hidden, "not run")

        shutil.copytree(REPO_ROOT / "helpers", work / "helpers", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for py in REPO_ROOT.glob("*.py"):
            shutil.copy2(py, work / py.name)
        shutil.copy2(submission, work / submission.name)
        if watch is None:
            watch = [submission, REPO_ROOT / "helpers"] + ([Path(_data_dir())] if _data_dir() else [])
        watched = [guard, *[Path(w) for w in watch if Path(w).exists()]]
        before, helpers_before = snapshot(watched), snapshot([work / "helpers"])
        report["integrity"]["watched"] = [str(w) for w in watched]

        cells, notes = code_cells(nb)
        nonce = secrets.token_hex(16)
        job = {"nonce": nonce, "lab": lab, "submission": str(work / submission.name), "cells": cells,
               "hidden_tests": hidden, "results_dir": str(results_dir)}
        left = max(1.0, timeout - (time.monotonic() - started))
        log = tmp / "output.log"
        info = _run_runner(job, work, left, log)
        report["output_tail"] = _tail(log)

        diff = compare_snapshots(before, snapshot(watched))
        report["integrity"].update(diff, watched_files=len(before["files"]), truncated=before["truncated"])
        helpers_diff = compare_snapshots(helpers_before, snapshot([work / "helpers"]))
        report["integrity"]["helpers_copy"] = helpers_diff["deleted"] + helpers_diff["changed"] + helpers_diff["added"]

        results = None
        results_file = results_dir / f"results-{nonce}.json"
        if info["stopped"] is None:
            try:
                results = json.loads(results_file.read_text(encoding="utf-8"))
                if results.get("nonce") != nonce:
                    raise ValueError("the results file does not carry this run's nonce")
            except (OSError, ValueError) as err:
                info["stopped"] = f"the grader process wrote no valid results ({type(err).__name__}: {err})"
                results = None
        ex = report["execution"]
        ex.update(code_cells=sum(not c.get("injected") for c in cells), stopped=info["stopped"],
                  exit_code=info["exit_code"], notes=notes)
        progress = _last_progress(results_dir)
        if info["stopped"] in ("timeout", "process died"):
            ex["stopped_phase"] = progress.get("phase")
            if progress.get("phase") == "cell":
                ex["stopped_cell_number"] = progress.get("cell")
            elif progress.get("check"):
                ex["stopped_phase"] = f"{progress['phase']} {progress['check']}"
            ex["cells_run"] = sum(1 for c in cells if not c.get("injected")
                                  and c["cell"] < (progress.get("cell") or 10 ** 9)) if progress.get("phase") == "cell" \
                else (ex["code_cells"] if progress.get("phase") not in (None, "imports") else 0)
        if results is not None:
            ran = [c for c in results.get("cells", []) if not c.get("injected")]
            ex["cells_run"] = len(ran)
            ex["errored_cells"] = [{k: c.get(k) for k in ("cell", "ename", "evalue", "todo")}
                                   for c in ran if c["status"] == "error"]
            report["tampering"] = results.get("tampering", [])
            report["grader_errors"] += results.get("grader_errors", [])
            report["contract"] = results.get("contract", report["contract"])
        why = f"the run stopped ({info['stopped']})" if info["stopped"] else "not run"
        report["checks"] = _checks_with_points(lab, results, hidden, why)
    except _Stop:
        pass
    except Exception:  # noqa: BLE001 - the grader reports its own failures instead of crashing
        report["grader_errors"].append(traceback.format_exc())
    finally:
        if keep_workdir:
            report["workdir_kept"] = str(tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    try:
        report["problems"] += _problems(report)
        if report["grader_errors"] and not report["checks"]:
            report["problems"].append("the grader failed: see grader_errors")
        earned = sum(c["points"] for c in report["checks"])
        report["points"] = 0.0 if report["problems"] else float(earned)
        report["all_passed"] = bool(report["checks"]) and report["points"] == report["max_points"] > 0
        report["summary"] = _summary(report)
    except Exception:  # noqa: BLE001
        report["grader_errors"].append(traceback.format_exc())
    report["duration_s"] = round(time.monotonic() - started, 1)
    if out_dir is not None:
        try:
            write_reports(report, out_dir)
        except Exception:  # noqa: BLE001 - e.g. an unwritable folder: still return the report
            report["grader_errors"].append(traceback.format_exc())
    return report


def _merge_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.course.grade merge",
                                     description="Merge hand-given scores of the answer cells into a class table.")
    parser.add_argument("table", help="a class table written by the grader (class_table_<lab>.csv)")
    parser.add_argument("hand", help="CSV: student,<answer id>,... (an optional '(max points)' row)")
    parser.add_argument("--out", help="the merged table (default: <table stem>_merged.csv, and .md)")
    args = parser.parse_args(argv)
    table = Path(args.table)
    out = Path(args.out) if args.out else table.with_name(f"{table.stem}_merged.csv")
    try:
        written = classtable.merge_hand_scores(table, args.hand, out, out.with_suffix(".md"))
    except (OSError, ValueError) as err:
        parser.error(str(err))
    print(f"Merged {', '.join(written['columns'])} into {written['csv']} and {written['markdown']}")
    if written.get("ungraded"):
        print(f"Not graded yet: {written['ungraded']}")
    return 0


def _grade_with_checkpoint(path: Path, lab: str | None, out: Path, timeout: float, keep: bool,
                           checkpoint: Path | None, samples: int) -> dict[str, Any]:
    """One submission, and its checkpoint when given; the reports and the feedback file are written."""
    report = grade(path, lab=lab, out_dir=out, timeout=timeout, keep_workdir=keep)
    if checkpoint is not None:
        if report["lab"] in grade_checkpoint.NETWORKS:
            report["checkpoint"] = grade_checkpoint.run(path, checkpoint, report["lab"], out / ".scratch",
                                                        samples=samples, timeout=timeout)
        else:
            report["checkpoint"] = {"status": "error", "message": f"checkpoint grading covers "
                                    f"{sorted(grade_checkpoint.NETWORKS)}, not the {report['lab']} lab."}
        write_reports(report, out)
    classtable.write_feedback(report, out / f"{path.stem}.feedback.md")
    return report


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["merge"]:
        return _merge_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submission", help="the notebook handed in, or a folder of them (one per student)")
    parser.add_argument("--lab", choices=lab_names(), help="default: told from the file name or setup_lab(...)")
    parser.add_argument("--out", default="grades", help="folder for the reports (default: ./grades)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds per submission (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder for inspection")
    parser.add_argument("--checkpoint", help="the student's checkpoint (last.pt): also score the trained model "
                                             "(folder mode pairs <stem>.ipynb with <stem>.pt by itself)")
    parser.add_argument("--jobs", type=int, default=1, help="folder mode: submissions graded at once (default 1)")
    parser.add_argument("--samples", type=int, default=grade_checkpoint.DEFAULT_SAMPLES,
                        help="samples scored per checkpoint (default %(default)s)")
    args = parser.parse_args(argv)
    path = Path(args.submission)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    print("This runs the submitted code: use a disposable environment.", flush=True)
    if path.is_dir():
        if args.checkpoint:
            parser.error("--checkpoint is for one submission; in a folder, put <stem>.pt beside <stem>.ipynb")
        try:
            grade_class.grade_folder(path, args.out, jobs=args.jobs, lab=args.lab, timeout=args.timeout,
                                     samples=args.samples)
        except (FileNotFoundError, NotADirectoryError, ValueError) as err:
            parser.error(str(err))
        return 0
    if not path.is_file():
        parser.error(f"no file or folder at {path}")
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    if checkpoint is not None and not checkpoint.is_file():
        parser.error(f"no checkpoint at {checkpoint}")
    lab = args.lab
    if lab is None:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 - graded (and reported) as unreadable below
            nb = None
        lab = infer_lab(path, nb)
        if lab is None and nb is not None:
            parser.error(f"cannot tell which lab {path.name} is: pass --lab {{{','.join(lab_names())}}}")
    print(f"Grading {path} ({lab or 'unknown'} lab) in the smoke profile, time limit {args.timeout:g} s.", flush=True)
    report = _grade_with_checkpoint(path, lab, Path(args.out), args.timeout, args.keep, checkpoint, args.samples)
    print(f"{report['points']:g}/{report['max_points']:g} points: {report['summary']}")
    if "checkpoint" in report:
        model = report["checkpoint"]
        print(f"trained model: {model['status']}" + (f" ({model['message']})" if model.get("message") else ""))
    for key, where in report.get("reports", {}).items():
        print(f"{key}: {where}")
    print(f"feedback: {Path(args.out) / (path.stem + '.feedback.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
