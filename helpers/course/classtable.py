"""One class table from many grade reports, hand-given scores merged into it, one feedback file per student.

Input: grade reports as :mod:`helpers.course.grade` writes them, one dict per submission::

    {"submission": path, "student": stem, "lab": name, "points": float, "max_points": float,
     "checks": [{"id", "title", "kind": "visible"|"hidden"|"contract", "points", "max_points",
                 "status": "passed"|"failed"|"not implemented"|"error"|"not run", "message"}],
     "contract": {"status", "items": [{"name", "ok", "detail"}]},
     "by_hand": [{"id", "cell", "title"}],
     "problems": [str]}

Extra keys are ignored; missing optional ones (``checks``, ``contract``, ``by_hand``,
``problems``, ``points``, ``max_points``) are tolerated: a submission that crashed before its
checks ran has no checks and gets 0 in every column.

The class table (CSV and Markdown), one table per lab::

    student, lab, <check id>..., total, max, contract, problems
    (max points), ...                      <- the points each check is worth
    alice, vanilla, 2, 0, ...              <- one row per student
    (pass rate), ...                       <- share of students whose check passed

- A check a report does not have (crashed submission, older grader) counts 0 points, not passed.
- ``total`` is the report's ``points`` (the grader's word: it may withhold credit, e.g. from a
  submission that tampered with files); when it differs from the sum of the check columns the
  ``problems`` cell says so. ``max`` is the report's ``max_points`` (else the sum of the columns).
- Reports of different labs do not go into one table: :func:`build_class_table` raises, and
  :func:`write_class_tables` writes one table per lab (``class_table_<lab>.csv`` and ``.md``).

:func:`merge_hand_scores` adds the scores given by hand for the answer cells (a CSV
``student,<answer id>,...``) as new columns and adds them to ``total``.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

MAX_ROW = "(max points)"        # first row of a table: what each column is worth
PASS_RATE_ROW = "(pass rate)"   # last row: share of students whose check passed
RESERVED_ROWS = (MAX_ROW, PASS_RATE_ROW)
LEFT_COLUMNS = ("student", "lab")
RIGHT_COLUMNS = ("total", "max", "contract", "problems")
UNKNOWN_LAB = "unknown"         # the lab of a report that names none
_PROBLEMS_CELL_CHARS = 300      # problems are cut to this length in a table cell (the feedback file has them whole)
_TOTAL_TOLERANCE = 1e-6


# --------------------------------------------------------------------------- reading reports

def _number(value: Any, what: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}.")
    return float(value)


def _fmt(value: float) -> str:
    """Points as short text: ``2``, ``1.5``, ``0.333``."""
    return f"{round(value, 3):g}"


def _student(report: Mapping[str, Any]) -> str:
    student = report.get("student") or (Path(str(report["submission"])).stem if report.get("submission") else None)
    if not student:
        raise ValueError(f"A report names neither its student nor its submission (keys: {sorted(report)}).")
    if str(student) in RESERVED_ROWS:
        raise ValueError(f"{student!r} cannot be a student name: the class table uses it for a summary row.")
    return str(student)


def _lab(report: Mapping[str, Any]) -> str:
    return str(report.get("lab") or UNKNOWN_LAB)


def _checks(report: Mapping[str, Any], student: str) -> list[Mapping[str, Any]]:
    checks = report.get("checks") or []
    if not isinstance(checks, list):
        raise ValueError(f"The report of {student} has 'checks' of type {type(checks).__name__}, expected a list.")
    seen = set()
    for check in checks:
        if not isinstance(check, Mapping) or not check.get("id"):
            raise ValueError(f"The report of {student} has a check without an 'id': {check!r}.")
        if check["id"] in seen:
            raise ValueError(f"The report of {student} lists check {check['id']!r} twice.")
        seen.add(check["id"])
    return checks


def _problems(report: Mapping[str, Any]) -> list[str]:
    problems = report.get("problems") or []
    if isinstance(problems, str):
        return [problems]
    return [str(p) for p in problems]


def _contract_status(report: Mapping[str, Any]) -> str:
    contract = report.get("contract")
    if isinstance(contract, Mapping) and contract.get("status"):
        return str(contract["status"])
    return "not run"


# --------------------------------------------------------------------------- the table

@dataclass
class ClassTable:
    """One lab's class table: a row per student, a column per check (points).

    Build it with :func:`build_class_table`; write it with :meth:`write`.
    """

    lab: str                                  # the lab every report belongs to
    check_ids: list[str]                      # columns, in the grader's order (first report that has them)
    titles: dict[str, str]                    # check id -> title
    max_points: dict[str, float]              # check id -> points it is worth
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per student, see build_class_table

    def pass_rates(self) -> dict[str, float]:
        """Share of students whose check passed (a check a report lacks counts as not passed)."""
        n = len(self.rows)
        return {cid: sum(r["status"].get(cid) == "passed" for r in self.rows) / n for cid in self.check_ids}

    def contract_pass_rate(self) -> float:
        return sum(r["contract"] == "passed" for r in self.rows) / len(self.rows)

    def header(self) -> list[str]:
        return [*LEFT_COLUMNS, *self.check_ids, *RIGHT_COLUMNS]

    def csv_rows(self) -> list[dict[str, str]]:
        """The rows as written to CSV: the max-points row, a row per student, the pass-rate row."""
        table_max = sum(self.max_points.values())
        out = [{"student": MAX_ROW, "lab": self.lab, **{c: _fmt(self.max_points[c]) for c in self.check_ids},
                "total": "", "max": _fmt(table_max), "contract": "", "problems": ""}]
        for r in self.rows:
            out.append({"student": r["student"], "lab": self.lab,
                        **{c: _fmt(r["points"].get(c, 0.0)) for c in self.check_ids},
                        "total": _fmt(r["total"]), "max": _fmt(r["max"]), "contract": r["contract"],
                        "problems": _cell_text("; ".join(r["problems"]))})
        rates = self.pass_rates()
        out.append({"student": PASS_RATE_ROW, "lab": self.lab, **{c: f"{rates[c]:.3f}" for c in self.check_ids},
                    "total": "", "max": "", "contract": f"{self.contract_pass_rate():.3f}", "problems": ""})
        return out

    def write(self, csv_path: str | os.PathLike, md_path: str | os.PathLike | None = None) -> dict[str, Path]:
        """Write the table as CSV and Markdown (``md_path`` defaults to ``csv_path`` with ``.md``)."""
        csv_path = Path(csv_path)
        md_path = Path(md_path) if md_path is not None else csv_path.with_suffix(".md")
        header, rows = self.header(), self.csv_rows()
        _write_csv(csv_path, header, rows)
        md_path.parent.mkdir(parents=True, exist_ok=True)
        md_path.write_text(render_markdown(header, rows, self.titles), encoding="utf-8")
        return {"csv": csv_path, "markdown": md_path}


def _cell_text(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _PROBLEMS_CELL_CHARS else text[: _PROBLEMS_CELL_CHARS - 3] + "..."


def build_class_table(reports: Sequence[Mapping[str, Any]]) -> ClassTable:
    """A class table from the reports of ONE lab.

    Args:
        reports: grade reports (the format in the module docstring), one per student.

    Returns:
        A :class:`ClassTable`. Each row is ``{"student", "submission", "points": {check id: float},
        "status": {check id: str}, "total", "max", "contract", "problems": [str]}``.

    Raises:
        ValueError: no reports; reports of several labs (use :func:`write_class_tables`); the
            same student twice; a check worth different points in two reports (graded by two
            versions of the grader); a malformed report (a check without an id, non-numeric points).
    """
    reports = list(reports)
    if not reports:
        raise ValueError("No reports to build a class table from.")
    labs = defaultdict(list)
    for report in reports:
        labs[_lab(report)].append(_student(report))
    if len(labs) > 1:
        found = "; ".join(f"{lab}: {', '.join(students)}" for lab, students in labs.items())
        raise ValueError(f"The reports belong to {len(labs)} labs ({found}). A class table holds one lab: "
                         "pass each lab's reports separately, or use write_class_tables(), which writes one table per lab.")
    lab = next(iter(labs))
    check_ids: list[str] = []
    titles: dict[str, str] = {}
    max_points: dict[str, float] = {}
    max_source: dict[str, str] = {}
    rows = []
    seen_students: dict[str, str] = {}
    for report in reports:
        student = _student(report)
        submission = str(report.get("submission", ""))
        if student in seen_students:
            raise ValueError(f"Student {student!r} appears twice ({seen_students[student] or '?'} and {submission or '?'}); "
                             "grade each student once.")
        seen_students[student] = submission
        points, status = {}, {}
        for check in _checks(report, student):
            cid = str(check["id"])
            worth = _number(check.get("max_points"), f"max_points of check {cid!r} in the report of {student}")
            if cid in LEFT_COLUMNS or cid in RIGHT_COLUMNS:
                raise ValueError(f"The report of {student} has a check named {cid!r}, a name the class table keeps "
                                 "for its own column; rename the check.")
            if cid not in max_points:
                check_ids.append(cid)
                titles[cid] = str(check.get("title") or cid)
                max_points[cid] = worth
                max_source[cid] = student
            elif abs(max_points[cid] - worth) > _TOTAL_TOLERANCE:
                raise ValueError(
                    f"Check {cid!r} is worth {_fmt(max_points[cid])} points in the report of {max_source[cid]} but "
                    f"{_fmt(worth)} in the report of {student}: the reports come from different versions of the "
                    "grader. Grade the whole class again with one version.")
            points[cid] = _number(check.get("points"), f"points of check {cid!r} in the report of {student}")
            status[cid] = str(check.get("status") or "not run")
        problems = _problems(report)
        check_sum = sum(points.values())
        total = _number(report["points"], f"points of {student}") if report.get("points") is not None else check_sum
        if abs(total - check_sum) > _TOTAL_TOLERANCE:
            problems = [f"total {_fmt(total)} set by the grader, not the sum of the checks ({_fmt(check_sum)})", *problems]
        rows.append({"student": student, "submission": submission, "points": points, "status": status,
                     "total": total, "max": report.get("max_points"), "contract": _contract_status(report),
                     "problems": problems})
    table_max = sum(max_points.values())
    for row in rows:
        row["max"] = _number(row["max"], f"max_points of {row['student']}") if row["max"] is not None else table_max
    return ClassTable(lab, check_ids, titles, max_points, rows)


def write_class_table(
    reports: Sequence[Mapping[str, Any]], csv_path: str | os.PathLike, md_path: str | os.PathLike | None = None
) -> dict[str, Path]:
    """Build the class table of one lab's reports and write it as CSV and Markdown.

    Args:
        reports: grade reports of one lab.
        csv_path: where the CSV goes.
        md_path: where the Markdown goes; default ``csv_path`` with the suffix ``.md``.

    Returns:
        ``{"csv": Path, "markdown": Path}``.
    """
    return build_class_table(reports).write(csv_path, md_path)


def write_class_tables(reports: Iterable[Mapping[str, Any]], folder: str | os.PathLike) -> dict[str, dict[str, Path]]:
    """One class table per lab: ``<folder>/class_table_<lab>.csv`` and ``.md``.

    Reports that name no lab go to ``class_table_unknown``.

    Returns:
        ``{lab: {"csv": Path, "markdown": Path}}``.
    """
    by_lab: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for report in reports:
        by_lab[_lab(report)].append(report)
    if not by_lab:
        raise ValueError("No reports to build a class table from.")
    folder = Path(folder)
    return {lab: write_class_table(group, folder / f"class_table_{lab}.csv") for lab, group in by_lab.items()}


# --------------------------------------------------------------------------- CSV and Markdown

def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Mapping[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def _read_csv(path: Path, what: str) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise FileNotFoundError(f"No {what} at {path}.")
    with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: spreadsheets often add a BOM
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        rows = []
        for raw in reader:
            if None in raw:
                raise ValueError(f"{path}, line {reader.line_num}: more cells than the header has columns.")
            row = {k.strip(): (v or "").strip() for k, v in raw.items()}
            if any(row.values()):  # skip blank lines
                rows.append(row)
    return header, rows


def _md_escape(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(header: Sequence[str], rows: Sequence[Mapping[str, str]], titles: Mapping[str, str] | None = None) -> str:
    """A class table (as written to CSV: max-points row, student rows, pass-rate row) in Markdown.

    The max-points row goes into the column headings ("id (max)"), pass rates are shown as
    percentages.
    """
    titles = titles or {}
    max_row = next((r for r in rows if r.get("student") == MAX_ROW), {})
    rate_row = next((r for r in rows if r.get("student") == PASS_RATE_ROW), {})
    students = [r for r in rows if r.get("student") not in RESERVED_ROWS]
    lab = next((r.get("lab") for r in rows if r.get("lab")), UNKNOWN_LAB)
    point_columns = [c for c in header if c not in LEFT_COLUMNS and c not in RIGHT_COLUMNS]
    columns = ["student", *point_columns, "total", "max", "contract", "problems"]

    def heading(c: str) -> str:
        if c not in point_columns:
            return c
        worth = max_row.get(c, "")
        return f"`{c}` ({worth})" if worth else f"`{c}`"

    lines = [f"# Class table: {lab} lab", "",
             f"{len(students)} students. Points per check; `total` out of `max`. "
             "Last row: share of students whose check passed (a submission that stopped before a check counts as not passed).",
             "", "| " + " | ".join([columns[0], *map(heading, columns[1:])]) + " |",
             "|" + "---|" * len(columns)]
    for r in students:
        lines.append("| " + " | ".join(_md_escape(r.get(c, "")) for c in columns) + " |")

    def rate(c: str) -> str:
        value = rate_row.get(c, "")
        try:
            return f"{float(value):.0%}"
        except ValueError:
            return ""

    lines.append("| **pass rate** | " + " | ".join(rate(c) if c in point_columns or c == "contract" else ""
                                                 for c in columns[1:]) + " |")
    described = [c for c in point_columns if titles.get(c) and titles[c] != c]
    if described:
        lines += ["", "Checks:", ""] + [f"- `{c}`: {_md_escape(titles[c])}" for c in described]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- hand scores

def _parse_score(value: str, where: str) -> float | None:
    if value == "":
        return None
    try:
        score = float(value)
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a number.") from None
    if not math.isfinite(score) or score < 0:
        raise ValueError(f"{where}: {value!r} is not a non-negative number.")
    return score


def merge_hand_scores(
    table_csv: str | os.PathLike,
    hand_csv: str | os.PathLike,
    out_csv: str | os.PathLike,
    out_md: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Add the scores given by hand for the answer cells to a class table.

    ``hand_csv`` has a header ``student,<answer id>,...`` (the ids of the reports' ``by_hand``
    items) and a row per student; an optional row whose student is ``(max points)`` says what each
    answer is worth (it is added to ``max``). An empty cell means "not graded yet": the cell stays
    empty and adds nothing. Each answer id becomes a new column before ``total``, and every
    student's ``total`` grows by their hand scores.

    Args:
        table_csv: a class table written by :func:`write_class_table`.
        hand_csv: the hand-given scores.
        out_csv: where the merged table goes (may be ``table_csv`` itself).
        out_md: its Markdown; default ``out_csv`` with the suffix ``.md``.

    Returns:
        ``{"csv": Path, "markdown": Path, "columns": [answer ids], "ungraded": {answer id: [students
        without a score]}}``.

    Raises:
        ValueError: ``table_csv`` is not a class table; ``hand_csv`` has no ``student`` column, no
            answer columns, a column the table already has, a student the table does not have, a
            student twice, or a score that is not a non-negative number (or exceeds its max).
        FileNotFoundError: a missing input file.
    """
    table_csv, hand_csv, out_csv = Path(table_csv), Path(hand_csv), Path(out_csv)
    header, rows = _read_csv(table_csv, "class table")
    hand_header, hand_rows = _read_csv(hand_csv, "hand-score file")
    missing = [c for c in (*LEFT_COLUMNS, *RIGHT_COLUMNS) if c not in header]
    if missing:
        raise ValueError(f"{table_csv} is not a class table written by write_class_table: it has no column(s) {missing}.")
    if not hand_header or hand_header[0] != "student":
        raise ValueError(f"{hand_csv} must start with a 'student' column (student,<answer id>,...), got header {hand_header}.")
    answers = hand_header[1:]
    if not answers or any(not a for a in answers):
        raise ValueError(f"{hand_csv} needs one named column per answer cell after 'student', got header {hand_header}.")
    if len(set(answers)) != len(answers):
        raise ValueError(f"{hand_csv} names an answer column twice: {answers}.")
    clash = [a for a in answers if a in header]
    if clash:
        raise ValueError(f"{table_csv} already has column(s) {clash}: merge the hand scores into the table the grader "
                         "wrote (before any earlier merge), or rename the answer columns.")

    by_student = {r["student"]: r for r in rows if r["student"] not in RESERVED_ROWS}
    hand_max: dict[str, float | None] = {a: None for a in answers}
    scores: dict[str, dict[str, float | None]] = {}
    unknown, errors = [], []
    for line, hand in enumerate(hand_rows, start=2):
        student = hand["student"]
        if student == MAX_ROW:
            for a in answers:
                try:
                    hand_max[a] = _parse_score(hand.get(a, ""), f"{hand_csv}, {MAX_ROW} row, column {a!r}")
                except ValueError as err:
                    errors.append(str(err))
            continue
        if student not in by_student:
            unknown.append(student or f"<empty name on line {line}>")
            continue
        if student in scores:
            raise ValueError(f"{hand_csv} gives scores for {student!r} twice.")
        scores[student] = {}
        for a in answers:
            try:
                scores[student][a] = _parse_score(hand.get(a, ""), f"{hand_csv}, student {student!r}, column {a!r}")
            except ValueError as err:
                errors.append(str(err))
    if unknown:
        raise ValueError(f"{hand_csv} has scores for student(s) not in {table_csv}: {', '.join(map(repr, unknown))}. "
                         f"Known students: {', '.join(sorted(by_student)) or 'none'}. Use the names of the table's "
                         "'student' column (the submission file names without .ipynb).")
    for student, given in scores.items():
        for a, score in given.items():
            if score is not None and hand_max[a] is not None and score > hand_max[a] + _TOTAL_TOLERANCE:
                errors.append(f"{hand_csv}, student {student!r}, column {a!r}: {_fmt(score)} is more than the "
                              f"{_fmt(hand_max[a])} points of {MAX_ROW}.")
    if errors:
        raise ValueError("Hand scores could not be merged:\n  " + "\n  ".join(errors))

    added_max = sum(v for v in hand_max.values() if v is not None)
    at = header.index("total")
    new_header = [*header[:at], *answers, *header[at:]]
    ungraded: dict[str, list[str]] = {a: [] for a in answers}
    for row in rows:
        student = row["student"]
        if student == MAX_ROW:
            for a in answers:
                row[a] = _fmt(hand_max[a]) if hand_max[a] is not None else ""
            if added_max and row.get("max"):
                row["max"] = _fmt(_parse_score(row["max"], f"{table_csv}, {MAX_ROW} row, max") + added_max)
        elif student == PASS_RATE_ROW:
            for a in answers:
                row[a] = ""  # a pass rate is not defined for a score given by hand
        else:
            given = scores.get(student, {})
            for a in answers:
                score = given.get(a)
                row[a] = _fmt(score) if score is not None else ""
                if score is None:
                    ungraded[a].append(student)
            total = _parse_score(row["total"], f"{table_csv}, student {student!r}, total") or 0.0
            row["total"] = _fmt(total + sum(s for s in given.values() if s is not None))
            if added_max and row.get("max"):
                row["max"] = _fmt(_parse_score(row["max"], f"{table_csv}, student {student!r}, max") + added_max)
    out_md = Path(out_md) if out_md is not None else out_csv.with_suffix(".md")
    _write_csv(out_csv, new_header, rows)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(render_markdown(new_header, rows), encoding="utf-8")
    return {"csv": out_csv, "markdown": out_md, "columns": answers, "ungraded": ungraded}


# --------------------------------------------------------------------------- feedback

_MARKS = {"passed": "✓", "failed": "✗", "error": "✗", "not implemented": "✗"}


def _quote(text: Any) -> list[str]:
    """Text as a Markdown block quote indented under a list item."""
    return [f"  > {line}" if line.strip() else "  >" for line in str(text).strip().splitlines()]


def write_feedback(report: Mapping[str, Any], path: str | os.PathLike, hidden_messages: bool = True) -> Path:
    """Write a student's feedback file (Markdown) from their grade report.

    Sections: automatic points; each check with its points, status and message (and ``hint``
    when the check has one); the ``generate`` contract items; the samples of the trained model
    when the report holds a ``"checkpoint"`` entry (a :func:`helpers.course.scoring.score_samples`
    result); what is graded by hand; problems.

    Args:
        report: one grade report (format in the module docstring; missing optional keys tolerated).
        path: the file to write (folders are created).
        hidden_messages: show the messages of ``"hidden"`` checks too. With False a hidden check
            shows its title, points and status only (its message may describe the hidden test).

    Returns:
        ``path`` as a Path.
    """
    student, lab = _student(report), _lab(report)
    checks = _checks(report, student)
    points = _number(report.get("points"), f"points of {student}") if report.get("points") is not None \
        else sum(_number(c.get("points"), "points") for c in checks)
    max_points = _number(report.get("max_points"), f"max_points of {student}") if report.get("max_points") is not None \
        else sum(_number(c.get("max_points"), "max_points") for c in checks)
    lines = [f"# Feedback: {student} ({lab} lab)", ""]
    if report.get("submission"):
        lines += [f"Submission: `{Path(str(report['submission'])).name}`", ""]
    by_hand = report.get("by_hand") or []
    lines += [f"**Automatic points: {_fmt(points)} / {_fmt(max_points)}.**"
              + (" The answer cells listed below are graded by hand and are not included." if by_hand else ""), ""]

    lines += ["## Checks", ""]
    if not checks:
        lines += ["No check ran: the notebook stopped before its checks (see Problems below).", ""]
    for c in checks:
        status = str(c.get("status") or "not run")
        kind = f", {c['kind']}" if c.get("kind") else ""
        lines.append(f"- {_MARKS.get(status, '–')} **{c.get('title') or c['id']}** (`{c['id']}`{kind}): "
                     f"{_fmt(_number(c.get('points'), 'points'))} / {_fmt(_number(c.get('max_points'), 'max_points'))}, {status}")
        if c.get("kind") == "hidden" and not hidden_messages:
            continue
        if c.get("message"):
            lines += _quote(c["message"])
        if c.get("hint"):
            lines += _quote(f"Hint: {c['hint']}")
    lines.append("")

    contract = report.get("contract")
    lines += ["## The `generate` contract", ""]
    if isinstance(contract, Mapping):
        lines += [f"Status: **{contract.get('status') or 'not run'}**", ""]
        for item in contract.get("items") or []:
            mark = "✓" if item.get("ok") else "✗"
            detail = f": {' '.join(str(item['detail']).split())}" if item.get("detail") else ""
            lines.append(f"- {mark} {item.get('name', '?')}{detail}")
        lines.append("")
    else:
        lines += ["Not checked (the notebook stopped before `generate` could be called).", ""]

    sampled = report.get("checkpoint")
    if isinstance(sampled, Mapping) and isinstance(sampled.get("thresholds"), list):
        lines += ["## Samples of your trained model", "",
                  f"Thresholds `{sampled.get('thresholds_name', '?')}`, {sampled.get('n', '?')} samples; "
                  f"**{'passed' if sampled.get('passed') else 'not passed'}**.", "",
                  "| measure | yours | real images | pass line | |", "|---|---|---|---|---|"]
        for line in sampled["thresholds"]:
            value, floor = line.get("value"), line.get("floor")
            shown = f"{value:.3g}" if isinstance(value, (int, float)) else str(value)
            floor_shown = f"{floor:.3g}" if isinstance(floor, (int, float)) else ""
            lines.append(f"| {line.get('name')} | {shown} | {floor_shown} | {_md_escape(line.get('rule', ''))} | "
                         f"{'✓' if line.get('passed') else '✗'} |")
        lines.append("")
    elif isinstance(sampled, Mapping) and sampled.get("message"):
        lines += ["## Samples of your trained model", "",
                  f"Your checkpoint could not be scored: {' '.join(str(sampled['message']).split())}", ""]

    lines += ["## Graded by hand", ""]
    if by_hand:
        for item in by_hand:
            cell = f"cell {item['cell']}, " if item.get("cell") is not None else ""
            lines.append(f"- {item.get('title') or item.get('id')} ({cell}`{item.get('id')}`)")
        lines += ["", "Your instructor scores these answers; the points are added to the class table."]
    else:
        lines.append("Nothing in this lab is graded by hand.")
    lines.append("")

    problems = _problems(report)
    lines += ["## Problems", ""]
    lines += [f"- {' '.join(p.split())}" for p in problems] if problems else ["None."]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
