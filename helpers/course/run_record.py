"""The note at the top of a committed solution notebook that says which run its outputs come from.

A solution notebook is committed with the outputs of one real run (the instructor sees the lab's real
results without running it). Its title cell then says which profile ran, on what device, when and for
how long, between two HTML comments, so that a later run replaces the note instead of adding another
one, and the template generator drops it (a student's template has no outputs to describe):

    <!-- run record: written by helpers.course (run_notebook --inplace, bench --inplace) -->
    > **The outputs in this copy** come from one run of the `full` profile ...
    <!-- end of run record -->
"""

from __future__ import annotations

import os
import platform
import re
from datetime import datetime, timezone

import torch

START = "<!-- run record: written by helpers.course (run_notebook --inplace, bench --inplace) -->"
END = "<!-- end of run record -->"
_BLOCK = re.compile(r"\n*" + re.escape(START) + r".*?" + re.escape(END) + r"\n*", re.S)
_PROFILE = re.compile(r"one run of the `(\w+)` profile")


def describe_machine() -> str:
    """This machine in a few words: the device the labs pick, cores, torch threads, versions."""
    if torch.cuda.is_available():
        device = f"a GPU ({torch.cuda.get_device_name(0)})"
    else:
        cpu = platform.processor() or platform.machine()
        threads = torch.get_num_threads()
        device = f"a CPU ({cpu}, {os.cpu_count()} cores, {threads} torch thread{'s' if threads != 1 else ''}; no GPU)"
    return f"{device}, torch {torch.__version__.split('+')[0]}, Python {platform.python_version()}"


def run_record(profile: str, minutes: float, results: str | None = None, machine: str | None = None,
               when: datetime | None = None) -> str:
    """The Markdown of the note (without the two comments).

    Args:
        profile: the profile that ran (``quick`` or ``full``).
        minutes: the whole run, top to bottom, in minutes.
        results: the benchmark report of this run (a path in the repository), when a benchmark made it.
        machine: where it ran (default: :func:`describe_machine` of this machine).
        when: when it ran (default: now, UTC).
    """
    when = when or datetime.now(timezone.utc)
    text = (f"> **The outputs in this copy** come from one run of the `{profile}` profile, top to bottom in a "
            f"fresh kernel, on {machine or describe_machine()}, on {when:%Y-%m-%d}: {minutes:.0f} min in all.")
    if results:
        text += f" The benchmark's measurements of this run: `{results}`."
    return text + (" The seeds are fixed, but another device draws other random numbers, so your figures will "
                   "differ a little; on a Colab GPU the run takes less time.")


def with_run_record(source: str, record: str) -> str:
    """``source`` (a title cell's Markdown) with ``record`` as its note, replacing an earlier note."""
    return without_run_record(source) + f"\n\n{START}\n{record}\n{END}"


def without_run_record(source: str) -> str:
    """``source`` without its run record (what the template generator keeps)."""
    return _BLOCK.sub("", source).rstrip("\n") if START in source else source


def recorded_profile(source: str) -> str | None:
    """The profile a title cell's run record names, or ``None`` when it has no record."""
    if START not in source:
        return None
    m = _PROFILE.search(source.split(START, 1)[1])
    return m.group(1) if m else None
