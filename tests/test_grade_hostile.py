"""Hostile submissions get no credit, and the report says why.

(a) prints fake pass lines, (b) replaces and monkeypatches the checks, (c) generate returns training
images, (d) a cell that never returns, (e) a cell that kills its own process, (f) a cell that deletes
and changes files outside its scratch folder. Each is built from the vanilla template or solution
with a small edit, cut before the training cell where training is not needed, and all are graded
once, two at a time (module fixture).
"""

from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers.course.grade import grade
from helpers.course.labs import lab_points

from grade_support import add_cell, before_training, cell_index, checks_print_pass, solution, template, tiny, todos_pass, write

MAX_POINTS = sum(lab_points("vanilla").values())

TAMPER = '''\
import helpers.checks.common
import helpers.checks.vanilla

def _always_pass(*args, **kwargs):
    print("✓ generator: passed")

# in its own namespace ...
check_generator = check_discriminator = check_vanilla_losses = check_train_step = check_generate = _always_pass
# ... and in the grader's modules
helpers.checks.vanilla.check_generator = _always_pass
helpers.checks.vanilla.check_discriminator.__code__ = _always_pass.__code__
helpers.checks.common._fail = lambda what, hint: None
'''

COPIES = '''\
def generate(n: int, seed: int | None = None) -> np.ndarray:
    """Training digits, drawn with the seed, instead of samples of G."""
    n = check_count(n)
    picks = torch.randint(len(x_train), (n,), generator=torch.Generator().manual_seed(0 if seed is None else seed))
    return to_unit_images(x_train[picks])
'''


def _submissions(root, outside):
    subs = {}
    nb = checks_print_pass(todos_pass(before_training(template())))
    add_cell(nb, "\n".join(f'print("✓ {name}: passed")' for name in ("generator", "discriminator", "BCE losses",
                                                                        "train step", "generate")))
    subs["fake_prints"] = write(nb, root / "a" / "lab8_vanilla_fake_prints.ipynb")

    nb = before_training(template())
    add_cell(nb, TAMPER, at=cell_index(nb, "from helpers.checks.vanilla import") + 1)
    subs["tampering"] = write(nb, root / "b" / "lab8_vanilla_tampering.ipynb")

    nb = before_training(solution())
    add_cell(nb, COPIES)
    subs["copies"] = write(nb, root / "c" / "lab8_vanilla_copies.ipynb")

    subs["hang"] = tiny(root / "d" / "lab8_vanilla_hang.ipynb", "import time\nprint('started')",
                        "while True:\n    time.sleep(0.2)", "print('never')")
    subs["exit"] = tiny(root / "e" / "lab8_vanilla_exit.ipynb", "print('started')", "import os\nos._exit(3)",
                        "print('never')")

    nb = before_training(solution())
    add_cell(nb, f"import os\nos.remove(os.path.join('..', 'guard', 'SENTINEL.txt'))  # the grader's sentinel\n"
                 f"open({str(outside / 'keep.txt')!r}, 'a').write('changed')\n"
                 f"open('inside.txt', 'w').write('its own folder: fine')")
    subs["files"] = write(nb, root / "f" / "lab8_vanilla_files.ipynb")
    return subs


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    outside = root / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("course data")
    subs = _submissions(root, outside)
    timeouts = {"hang": 60}

    def run(name):
        watch = [outside] if name == "files" else []
        return name, grade(subs[name], out_dir=root / "out", timeout=timeouts.get(name, 400), watch=watch)

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(pool.map(run, subs))
    done["outside"] = outside
    return done


def _no_credit(report):
    assert report["points"] == 0 and report["max_points"] == MAX_POINTS, report["summary"]
    assert report["all_passed"] is False
    assert report["grader_errors"] == [], report["grader_errors"]


def test_a_fake_pass_lines_are_not_evidence(reports):
    report = reports["fake_prints"]
    _no_credit(report)
    assert "✓ generator: passed" in report["output_tail"]  # it printed them ...
    assert not [c for c in report["checks"] if c["status"] == "passed"]  # ... and nothing counted
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    assert statuses["vanilla.generator"] in ("failed", "error") and statuses["vanilla.train_step"] == "failed"
    assert "defines no `opt_G`" in next(c["message"] for c in report["checks"] if c["id"] == "vanilla.train_step")
    assert report["contract"]["status"] == "failed" and "defines no `generate`" in report["contract"]["message"]
    assert report["problems"] == []  # not hostile beyond printing: the checks simply fail


def test_b_replaced_and_patched_checks_are_undone_and_reported(reports):
    report = reports["tampering"]
    _no_credit(report)
    tampering = "\n".join(report["tampering"])
    assert "helpers.checks.vanilla.check_generator was replaced" in tampering
    assert "helpers.checks.common._fail was replaced" in tampering
    assert "the code or defaults of helpers.checks.vanilla.check_discriminator were changed" in tampering
    assert any(p.startswith("tampered with helpers") for p in report["problems"])
    # the grader called its own checks: the template's TODOs are still not implemented
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    assert statuses["vanilla.generator"] == "not implemented" and statuses["vanilla.discriminator"] == "not implemented"
    assert "tampered" in (report["reports"] and open(report["reports"]["markdown"]).read())


def test_c_training_images_are_not_samples(reports):
    report = reports["copies"]
    _no_credit(report)
    items = {i["id"]: i for i in report["contract"]["items"]}
    assert not items["not_copies"]["ok"] and "copies of training images" in items["not_copies"]["message"]
    assert all(i["ok"] for k, i in items.items() if k != "not_copies")  # everything else of the contract holds
    assert report["contract"]["status"] == "failed"
    contract = next(c for c in report["checks"] if c["kind"] == "contract")
    assert contract["status"] == "failed" and contract["points"] == 0
    assert any(p.startswith("generate returned copies of training images") for p in report["problems"])
    visible = [c for c in report["checks"] if c["kind"] == "visible"]
    assert all(c["status"] == "passed" for c in visible)  # the solution's code is right, still no credit


def test_d_a_cell_that_never_returns_is_stopped(reports):
    report = reports["hang"]
    _no_credit(report)
    ex = report["execution"]
    assert ex["stopped"] == "timeout" and ex["stopped_cell_number"] == 2 and ex["cells_run"] == 1
    assert any("timed out after 60 s in cell 2" in p for p in report["problems"]), report["problems"]
    assert report["duration_s"] < 120
    assert {c["status"] for c in report["checks"]} == {"not run"}


def test_e_a_cell_that_kills_its_process_is_reported(reports):
    report = reports["exit"]
    _no_credit(report)
    ex = report["execution"]
    assert ex["stopped"] == "process died" and ex["exit_code"] == 3 and ex["stopped_cell_number"] == 2
    assert any("the process died (exit code 3" in p and "in cell 2" in p for p in report["problems"])
    assert {c["status"] for c in report["checks"]} == {"not run"}


def test_f_files_outside_the_scratch_folder(reports):
    report = reports["files"]
    _no_credit(report)
    integrity = report["integrity"]
    assert any(p.endswith("guard/SENTINEL.txt") for p in integrity["deleted"])
    assert str(reports["outside"] / "keep.txt") in integrity["changed"]
    assert not any("inside.txt" in p for p in integrity["added"])  # its own folder is its own
    assert any("outside its scratch folder" in p for p in report["problems"])
    assert all(c["status"] == "passed" for c in report["checks"] if c["kind"] == "visible")  # correct, still nothing
    md = open(report["reports"]["markdown"]).read()
    assert f"- changed: `{reports['outside'] / 'keep.txt'}`" in md and "## No credit" in md
