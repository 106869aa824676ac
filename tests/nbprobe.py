"""Reading what an executed notebook printed (not a test module)."""

from __future__ import annotations

import json
import re


def probe_result(nb) -> dict:
    """The JSON a probe cell printed after ``PROBE-RESULT ``."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            m = re.search(r"PROBE-RESULT (.*)", out.get("text", ""))
            if m:
                return json.loads(m.group(1))
    raise AssertionError("the probe cell printed nothing")


def all_text(nb) -> str:
    """Everything the notebook's cells printed, as one string."""
    return "\n".join(out.get("text", "") for c in nb.cells for out in c.get("outputs", []))


def assert_outputs_of_one_real_run(nb) -> None:
    """The committed outputs come from one top-to-bottom run in the quick or full profile: every code
    cell ran once, in order, without an error, and the setup cell printed a non-smoke profile."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, "a code cell has no output of the committed run"
    assert counts == sorted(counts) and len(set(counts)) == len(counts), "cells were not run once, top to bottom"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"the committed run stopped with {errors[0].get('ename')}"
    m = re.search(r"Profile: (\w+)", all_text(nb))
    assert m and m.group(1) in ("quick", "full"), "the outputs are not of a quick or full run"
    assert any(o.get("output_type") == "display_data" for c in code for o in c.get("outputs", [])), "no figure"
