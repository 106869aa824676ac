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
