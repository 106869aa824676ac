"""The markers in a solution notebook's cells: nbgrader's solution regions and hidden tests.

    ### BEGIN SOLUTION            ### BEGIN HIDDEN TESTS
    ...                           # hidden test <lab>.<name>: <title>
    ### END SOLUTION              ...
                                  ### END HIDDEN TESTS

The templates (:mod:`helpers.course.templates`), the nbgrader metadata
(:mod:`helpers.course.nbgrader_cells`) and the grader read them through this module.
"""

from __future__ import annotations

import re

_BEGIN = re.compile(r"^(?P<indent>[ \t]*)#+\s*BEGIN SOLUTION\s*$")
_END = re.compile(r"^[ \t]*#+\s*END SOLUTION\s*$")
_BEGIN_HIDDEN = re.compile(r"^[ \t]*#+\s*BEGIN HIDDEN TESTS\s*$")
_END_HIDDEN = re.compile(r"^[ \t]*#+\s*END HIDDEN TESTS\s*$")
# The first line of a hidden-tests region: its row in helpers.course.labs.POINTS and what it tests.
HIDDEN_TEST_ID = re.compile(r"^[ \t]*#\s*hidden test\s+(?P<id>[\w.]+)\s*(?::\s*(?P<title>.*))?$")


class TemplateError(ValueError):
    """A solution notebook whose markers or cells cannot be turned into a template (the message says where)."""


def remove_hidden_tests(lines: list[str], where: str) -> list[str]:
    """``lines`` without their hidden-tests regions (markers included); unmatched markers raise."""
    out: list[str] = []
    hidden = False
    for line in lines:
        if _BEGIN_HIDDEN.match(line):
            if hidden:
                raise TemplateError(f"{where}: BEGIN HIDDEN TESTS inside another hidden-tests region.")
            hidden = True
        elif _END_HIDDEN.match(line):
            if not hidden:
                raise TemplateError(f"{where}: END HIDDEN TESTS without a BEGIN HIDDEN TESTS above it.")
            hidden = False
        elif not hidden:
            out.append(line)
    if hidden:
        raise TemplateError(f"{where}: BEGIN HIDDEN TESTS is never closed by END HIDDEN TESTS.")
    return out


def hidden_test_ids(lines: list[str], where: str) -> list[str]:
    """The ``<lab>.<name>`` of every hidden-tests region in ``lines``, in order; a region without one raises."""
    ids = []
    for i, line in enumerate(lines):
        if _BEGIN_HIDDEN.match(line):
            first = next((ln for ln in lines[i + 1:] if ln.strip()), "")
            m = HIDDEN_TEST_ID.match(first)
            if not m:
                raise TemplateError(f"{where}, line {i + 1}: a hidden-tests region must start with "
                                    f"'# hidden test <lab>.<name>: <title>' (its row in POINTS).")
            ids.append(m.group("id"))
    return ids


def solution_regions(lines: list[str], where: str) -> list[tuple[int, int]]:
    """``(begin, end)`` line indices of every solution region; unmatched markers raise."""
    regions: list[tuple[int, int]] = []
    begin = None
    for i, line in enumerate(lines):
        if _BEGIN.match(line):
            if begin is not None:
                raise TemplateError(f"{where}, line {i + 1}: BEGIN SOLUTION inside another solution region.")
            begin = i
        elif _END.match(line):
            if begin is None:
                raise TemplateError(f"{where}, line {i + 1}: END SOLUTION without a BEGIN SOLUTION above it.")
            regions.append((begin, i))
            begin = None
    if begin is not None:
        raise TemplateError(f"{where}, line {begin + 1}: BEGIN SOLUTION is never closed by END SOLUTION.")
    return regions
