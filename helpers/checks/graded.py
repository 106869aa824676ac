"""How the grader calls a lab's checks on a submission: one record per graded check.

Each lab's checks module ends with ``GRADED``, a list of :class:`GradedCheck`. The grader (a
separate process, ``helpers.course.grade_runner``) runs the submission's cells, then calls
``record.call(names)`` itself, with the check functions it imported before the submission ran, on
the submission's own objects. Points are in ``helpers.course.labs.POINTS``, under the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from helpers.checks.common import CheckFailed


@dataclass(frozen=True)
class GradedCheck:
    """One visible check as the grader calls it."""

    id: str                                     # "<lab>.<check>", the key of its row in POINTS
    title: str                                  # what it checks, for the report
    call: Callable[["Defined"], None]           # calls the check on the submission's names; raises if not passed
    check: str                                  # the notebook's call of it, in the cell that tests this row:
                                                # the function's name, with its first argument when records
                                                # share the function: "check_train_step(train_step_mt)"


class Defined:
    """The submission's names; a name it never defined fails the check with a message saying which."""

    def __init__(self, names: Mapping[str, Any]) -> None:
        self._names = names

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise CheckFailed(f"the notebook defines no `{name}`.\nHint: run every cell of the lab; do not rename "
                              f"what the TODOs define.")
        return self._names[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self._names.get(name, default)
