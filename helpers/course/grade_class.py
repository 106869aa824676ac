"""Grade a whole class at once: a folder of submissions, one scratch folder each.

    python -m helpers.course.grade FOLDER [--jobs N] [--out DIR] [--timeout S] [--lab LAB]

Every ``*.ipynb`` in ``FOLDER`` is one student's submission (the student is the file's stem); a
``<stem>.pt`` beside it is that student's checkpoint, graded with the model (see
:mod:`helpers.course.grade_checkpoint`). Each submission is graded by :func:`helpers.course.grade.grade`
in its own scratch folder and process, so one crash or hang does not stop the others; ``--jobs N``
grades N at a time. ``DIR`` (default ``./grades``) receives, per student, ``<stem>.grade.json``,
``<stem>.grade.md`` and the feedback file ``<stem>.feedback.md``, and per lab one class table
``class_table_<lab>.csv`` / ``.md`` (a row per student, a column per check, a pass rate per check).

A stopped run resumes where it stopped: ``DIR/progress.json`` records each finished submission with
the SHA-256 of its notebook (and checkpoint); a submission graded before and unchanged since is not
graded again, a changed one is, and so is one on which the grader itself failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable

import nbformat

from helpers.course import classtable, grade_checkpoint

PROGRESS = "progress.json"


def file_digest(*paths: Path) -> str:
    """SHA-256 over the bytes of ``paths`` (absent files count as empty)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def submissions_in(folder: str | os.PathLike) -> list[Path]:
    """The notebooks of ``folder`` (not the executed copies a grader may have left there), by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder of submissions.")
    found = sorted(p for p in folder.glob("*.ipynb") if not p.name.endswith(".executed.ipynb"))
    if not found:
        raise FileNotFoundError(f"{folder} holds no .ipynb submissions.")
    return found


class _Progress:
    """``progress.json``: {stem: digest} of finished submissions, rewritten atomically after each one."""

    def __init__(self, out: Path) -> None:
        self.path = out / PROGRESS
        self.lock = threading.Lock()
        try:
            self.done: dict[str, str] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.done = {}

    def finished(self, stem: str, digest: str) -> None:
        with self.lock:
            self.done[stem] = digest
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.done, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)


def _lab_of(submission: Path) -> str | None:
    from helpers.course.grade import infer_lab

    try:
        return infer_lab(submission, nbformat.read(submission, as_version=4))
    except Exception:  # noqa: BLE001 - an unreadable notebook: the lab stays unknown
        return infer_lab(submission)


def _grade_one(submission: Path, out: Path, lab: str | None, timeout: float, samples: int,
               grade_fn: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    try:
        report = grade_fn(submission, lab=lab, out_dir=out, timeout=timeout)
    except Exception:  # noqa: BLE001 - the grader itself failed: still a row in the table
        report = {"submission": str(submission), "student": submission.stem, "lab": lab or _lab_of(submission), "points": 0.0,
                  "max_points": 0.0, "checks": [], "grader_failed": True,
                  "problems": ["the grader failed: " + traceback.format_exc()[-800:]]}
    checkpoint = submission.with_suffix(".pt")
    if checkpoint.is_file() and report.get("lab") in grade_checkpoint.NETWORKS:
        report["checkpoint"] = grade_checkpoint.run(submission, checkpoint, report["lab"], out / ".scratch",
                                                    samples=samples, timeout=timeout)
        (out / f"{submission.stem}.grade.json").write_text(json.dumps(report, indent=2, default=str) + "\n",
                                                           encoding="utf-8")
    return report


def grade_folder(folder: str | os.PathLike, out_dir: str | os.PathLike = "grades", jobs: int = 1,
                 lab: str | None = None, timeout: float = 900, samples: int = grade_checkpoint.DEFAULT_SAMPLES,
                 grade_fn: Callable[..., dict[str, Any]] | None = None,
                 log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Grade every submission of ``folder`` (see the module docstring); returns all reports, in name order.

    Args:
        folder: the submissions (``<stem>.ipynb``, optionally ``<stem>.pt``).
        out_dir: reports, feedback files, the class table and ``progress.json``.
        jobs: submissions graded at the same time (each in its own processes).
        lab: force the lab; default told per submission.
        timeout: seconds per submission (and per checkpoint scoring).
        samples: samples scored per checkpoint.
        grade_fn: the per-submission grader (default :func:`helpers.course.grade.grade`; tests pass a fake).
        log: where progress lines go.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}.")
    if grade_fn is None:
        from helpers.course.grade import grade as grade_fn
    subs = submissions_in(folder)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    progress = _Progress(out)
    reports: dict[str, dict[str, Any]] = {}
    todo = []
    for sub in subs:
        digest = file_digest(sub, sub.with_suffix(".pt"))
        saved = out / f"{sub.stem}.grade.json"
        if progress.done.get(sub.stem) == digest and saved.is_file():
            reports[sub.stem] = json.loads(saved.read_text(encoding="utf-8"))
            log(f"{sub.name}: graded before and unchanged, kept")
        else:
            todo.append((sub, digest))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_grade_one, sub, out, lab, timeout, samples, grade_fn): (sub, digest)
                   for sub, digest in todo}
        for future in as_completed(futures):
            sub, digest = futures[future]
            report = future.result()
            reports[sub.stem] = report
            classtable.write_feedback(report, out / f"{sub.stem}.feedback.md")
            if not report.get("grader_failed"):  # a failure of the grader itself is tried again next run
                progress.finished(sub.stem, digest)
            log(f"{sub.name}: {report.get('points', 0):g}/{report.get('max_points', 0):g} points"
                + (f"; {report['problems'][0]}" if report.get("problems") else ""))
    ordered = [reports[s.stem] for s in subs]
    for lab_name, paths in classtable.write_class_tables(ordered, out).items():
        log(f"Class table ({lab_name}): {paths['csv']} and {paths['markdown']}")
    return ordered
