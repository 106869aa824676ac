"""Reading what an executed notebook printed (not a test module)."""

from __future__ import annotations

import json
import re

import nbformat


def printed_json(nb, marker: str) -> dict:
    """The JSON a cell printed after ``marker`` (e.g. ``"PROBE-RESULT "``), the first one in the notebook."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            m = re.search(re.escape(marker) + r"(.*)", out.get("text", ""))
            if m:
                return json.loads(m.group(1))
    raise AssertionError(f"no cell printed {marker.strip()!r}")


def probe_result(nb) -> dict:
    """The JSON a probe cell printed after ``PROBE-RESULT ``."""
    return printed_json(nb, "PROBE-RESULT ")


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
    from helpers.course.run_record import recorded_profile

    recorded = recorded_profile(nb.cells[0].source)
    assert recorded in (None, m.group(1)), f"the title cell says {recorded}, the run printed {m.group(1)}"
    assert any(o.get("output_type") == "display_data" for c in code for o in c.get("outputs", [])), "no figure"


def assert_committed_notebook(nb) -> None:
    """What every committed solution notebook must be: valid, asking Colab for a GPU, without Colab's own metadata,
    with the canonical setup cell first and ``finish_lab(env)`` last, and the outputs of one real run."""
    from helpers.course.setup_cell import SETUP_CELL_INDEX, render_setup_cell

    nbformat.validate(nb)
    assert nb.metadata.get("accelerator") == "GPU"
    assert "colab" not in nb.metadata
    assert nb.cells[SETUP_CELL_INDEX].source == render_setup_cell(), "run `python -m helpers.course.setup_cell`"
    assert nb.cells[-1].source.rstrip().endswith("finish_lab(env)")
    assert_outputs_of_one_real_run(nb)  # the figures are real outputs of a quick or full run
