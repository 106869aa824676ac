"""Student templates: generated from the solution notebooks, minus the solutions, stable, checked by CI."""

import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from helpers.course.run_notebook import execute_notebook
from helpers.course.templates import (COLAB_CELL_KEYS, COLAB_NOTEBOOK_KEYS, NOTE_CELL_ID, RUN_CELL_KEYS, TemplateError,
                                      colab_metadata, describe_regions, lab_notebooks, main, make_template,
                                      render_template, stale_templates, template_path, template_source)

from conftest import REPO_ROOT

SOLUTIONS = lab_notebooks(REPO_ROOT)
# Written independently of helpers.course.templates: what a region and a TODO block look like.
SOLUTION_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[ \t]*\n(?:.*\n)*?[ \t]*### END SOLUTION[ \t]*$", re.M)
HIDDEN_REGION = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[ \t]*\n(?:.*\n)*?[ \t]*### END HIDDEN TESTS[ \t]*(?:\n|$)", re.M)
HIDDEN_AT_END = re.compile(r"\n[ \t]*### BEGIN HIDDEN TESTS[ \t]*\n(?:.*\n)*?[ \t]*### END HIDDEN TESTS[ \t]*\Z")  # and its line break
TODO_BLOCK = re.compile(r"^([ \t]*)##TODO## \S.*\n(?:\1#   .*\n)*\1# YOUR CODE HERE\n\1raise NotImplementedError\(\)$", re.M)
# In the solution, the ##TODO## line (and its continuations) sits right above each code region.
# The run record in a solution's title cell (helpers.course.run_record): describes the solution's outputs only.
RUN_RECORD = re.compile(r"\n*<!-- run record: .*?<!-- end of run record -->\n*", re.S)
DESCRIBED_REGION = re.compile(r"^([ \t]*)##TODO## \S.*\n(?:\1#   .*\n)*\1### BEGIN SOLUTION[ \t]*\n", re.M)


def _stub(match):
    """nbgrader's code stub at the region's indentation (what ClearSolutions puts in place of a region)."""
    return f"{match.group(1)}# YOUR CODE HERE\n{match.group(1)}raise NotImplementedError()"


@pytest.fixture(params=SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def solution(request):
    return request.param


def _template(solution_path):
    return nbformat.reads(render_template(solution_path), as_version=4)


def _solution_lines(nb):
    """Every line inside a solution region of ``nb``."""
    lines = []
    for cell in nb.cells:
        for m in SOLUTION_REGION.finditer(cell.source):
            lines += [ln for ln in m.group(0).split("\n")[1:-1] if ln.strip()]
    return lines


def test_there_is_a_lab_with_solution_regions():
    assert REPO_ROOT / "lab8_vanilla.ipynb" in SOLUTIONS
    nb = nbformat.read(REPO_ROOT / "lab8_vanilla.ipynb", as_version=4)
    assert len(_solution_lines(nb)) > 20


def test_solution_notebooks_carry_no_colab_metadata(solution):
    nb = nbformat.read(solution, as_version=4)
    assert colab_metadata(nb) == [], f"{solution.name} carries Colab-only metadata: {colab_metadata(nb)}"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


def test_template_contains_no_solution_line(solution):
    tmpl = _template(solution)
    text = "\n".join(c.source for c in tmpl.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text and "HIDDEN TESTS" not in text
    template_lines = {ln.strip() for c in tmpl.cells for ln in c.source.split("\n")}
    sol = nbformat.read(solution, as_version=4)
    # A solution line may coincide with a template line only if it is as generic as `)` or `return x`
    # and also appears outside the regions; anything longer that survives is a leak.
    outside = {ln.strip() for c in sol.cells for ln in SOLUTION_REGION.sub("", c.source).split("\n")}
    leaked = [ln for ln in _solution_lines(sol) if ln.strip() in template_lines and ln.strip() not in outside]
    assert leaked == []


def test_template_is_the_solution_minus_its_regions(solution):
    sol = nbformat.read(solution, as_version=4)
    tmpl = _template(solution)
    assert tmpl.cells[0].id == NOTE_CELL_ID and f"Generated from `{solution.name}`" in tmpl.cells[0].source
    assert "python -m helpers.course.templates" in tmpl.cells[0].source and "do not edit" in tmpl.cells[0].source
    assert len(tmpl.cells) == len(sol.cells) + 1
    n_regions = 0
    for i, (s, t) in enumerate(zip(sol.cells, tmpl.cells[1:])):
        assert (t.cell_type, t.id) == (s.cell_type, s.id), i
        want_meta = {k: v for k, v in s.metadata.items() if k not in COLAB_CELL_KEYS + RUN_CELL_KEYS}
        assert dict(t.metadata) == want_meta, i
        src = HIDDEN_REGION.sub("", HIDDEN_AT_END.sub("", s.source))
        if i == 0:
            assert s.cell_type == "markdown", "cell 0 is the title"
            src = RUN_RECORD.sub("", src).rstrip("\n") if "<!-- run record" in src else src
            assert "run record" not in t.source
        if s.cell_type == "code":
            assert t.outputs == [] and t.execution_count is None, i
            # Each region becomes the stub at its indentation, everything else is kept (the ##TODO##
            # lines above the regions too), and every region has its ##TODO## line.
            assert t.source == SOLUTION_REGION.sub(_stub, src), f"cell {i} differs outside its solution regions"
            n_regions += len(SOLUTION_REGION.findall(src))
            assert len(DESCRIBED_REGION.findall(src)) == len(SOLUTION_REGION.findall(src)), f"cell {i}: a region lacks ##TODO##"
            assert len(TODO_BLOCK.findall(t.source)) == len(SOLUTION_REGION.findall(src))
        elif "BEGIN SOLUTION" not in src:
            assert t.source == src, i
    assert n_regions > 0
    want_meta = {k: v for k, v in sol.metadata.items() if k not in COLAB_NOTEBOOK_KEYS}
    if "language_info" in want_meta:  # only the name: the rest records the Python of the last run
        want_meta["language_info"] = {"name": want_meta["language_info"]["name"]}
    assert dict(tmpl.metadata) == want_meta
    assert tmpl.metadata.get("accelerator") == sol.metadata.get("accelerator")
    nbformat.validate(tmpl)


def test_todo_blocks_say_what_to_implement():
    tmpl = _template(REPO_ROOT / "lab8_vanilla.ipynb")
    todos = [m.group(0) for c in tmpl.cells for m in TODO_BLOCK.finditer(c.source)]
    text = "\n".join(todos)
    # the TODO heading above the cell, the function and its contract, the names later cells need
    assert "TODO 1 (the generator): create the layers of `Generator`" in text
    assert "`d_loss_bce`: J_D = BCE(logits_real, 1) + BCE(logits_fake, 0)" in " ".join(text.replace("#   ", "").split())
    assert "TODO 4 (the optimizers): define `opt_G`, `opt_D`." in text
    assert "`loss_D`, `loss_G`: the code below uses them" in " ".join(text.replace("#   ", "").split())
    assert all(len(line) <= 100 for block in todos for line in block.split("\n"))


def test_template_source_rules():
    src = ("def f(x):\n"
           "    \"\"\"Twice x.\"\"\"\n"
           "    if x:\n"
           "        ##TODO## return 2x, as a tensor\n"
           "        #   of the same dtype\n"
           "        ### BEGIN SOLUTION\n"
           "        return 2 * x\n"
           "        ### END SOLUTION\n"
           "    return x\n"
           "### BEGIN HIDDEN TESTS\n"
           "assert f(1) == 2\n"
           "### END HIDDEN TESTS\n"
           "print(f(2))")
    out = template_source(src, "code")
    assert out == ("def f(x):\n"
                   "    \"\"\"Twice x.\"\"\"\n"
                   "    if x:\n"
                   "        ##TODO## return 2x, as a tensor\n"
                   "        #   of the same dtype\n"
                   "        # YOUR CODE HERE\n"
                   "        raise NotImplementedError()\n"
                   "    return x\n"
                   "print(f(2))")
    compile(out, "cell", "exec")
    assert template_source("Answer:\n### BEGIN SOLUTION\nforty-two\n### END SOLUTION", "markdown") == "Answer:\nYOUR ANSWER HERE"
    for bad in ("### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION", "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION",
                "### BEGIN HIDDEN TESTS\nassert True"):
        with pytest.raises(TemplateError):
            template_source(bad, "code", where="nb, cell 3")


def test_a_region_without_its_todo_line_is_refused_and_fix_describes_it():
    src = ("def f(x):\n"
           "    \"\"\"Twice x.\"\"\"\n"
           "    ### BEGIN SOLUTION\n"
           "    y = 2 * x\n"
           "    ### END SOLUTION\n"
           "    return y")
    with pytest.raises(TemplateError, match=r"nb, cell 3, line 3: the solution region has no `##TODO##"):
        template_source(src, "code", where="nb, cell 3")
    with pytest.raises(TemplateError, match="cell, line 3"):  # a TODO line at another indentation does not count
        template_source("##TODO## x\nif True:\n    ### BEGIN SOLUTION\n    x = 1\n    ### END SOLUTION", "code")
    fixed = describe_regions(src, heading="TODO 9: doubling")
    assert fixed.split("\n")[2] == "    ##TODO## TODO 9 (doubling): write the body of `f`: Twice x. Set `y`: the code below uses them."
    assert fixed.split("\n")[3:] == src.split("\n")[2:] and describe_regions(fixed) == fixed
    assert "# YOUR CODE HERE" in template_source(fixed, "code")


def test_check_names_a_region_without_its_todo_line_and_fix_restores_it(tmp_path, capsys):
    shutil.copy(REPO_ROOT / "lab8_vanilla.ipynb", tmp_path / "lab8_vanilla.ipynb")
    assert main(["--root", str(tmp_path)]) == 0
    path = tmp_path / "lab8_vanilla.ipynb"
    nb = nbformat.read(path, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "class Generator" in c.source)
    original = nb.cells[index].source
    lines = original.split("\n")
    first = next(n for n, line in enumerate(lines) if "##TODO##" in line)
    region = next(n for n, line in enumerate(lines) if "BEGIN SOLUTION" in line)
    nb.cells[index].source = "\n".join(lines[:first] + lines[region:])
    nbformat.write(nb, path)
    capsys.readouterr()
    assert main(["--root", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    where = f"lab8_vanilla.ipynb, cell {index} (id {nb.cells[index].id}), line {first + 1}"
    assert f"{where}: the solution region has no `##TODO##" in err and "--fix" in err, err
    assert main(["--root", str(tmp_path)]) == 1  # nothing is written from an undescribed region
    assert main(["--root", str(tmp_path), "--fix"]) == 0
    assert nbformat.read(path, as_version=4).cells[index].source == original
    assert main(["--root", str(tmp_path), "--check"]) == 0


def test_colab_metadata_is_stripped_and_the_rest_kept():
    nb = nbformat.v4.new_notebook()
    nb.metadata.update({"colab": {"provenance": []}, "widgets": {"x": 1}, "gpuClass": "standard", "accelerator": "GPU",
                        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    cell = nbformat.v4.new_code_cell("##TODO## set x\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION", execution_count=3,
                                     outputs=[nbformat.v4.new_output("stream", text="1\n")])
    cell.metadata.update({"colab": {"base_uri": "x"}, "id": "abc", "outputId": "o1", "executionInfo": {},
                          "cellView": "form", "execution": {"iopub.status.idle": "t"}, "tags": ["parameters"]})
    nb.cells.append(cell)
    assert len(colab_metadata(nb)) == 3 + 5
    tmpl = make_template(nb, "x.ipynb")
    assert colab_metadata(tmpl) == []
    assert set(tmpl.metadata) == {"accelerator", "kernelspec"}
    assert dict(tmpl.cells[1].metadata) == {"tags": ["parameters"]}
    assert tmpl.cells[1].outputs == [] and tmpl.cells[1].execution_count is None
    assert nb.cells[0].execution_count == 3  # the solution itself is left alone


def test_the_run_record_goes_with_the_outputs_and_a_new_run_replaces_it():
    from helpers.course.run_record import recorded_profile, run_record, with_run_record

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Lab\n\nIntro."),
                nbformat.v4.new_code_cell("##TODO## set x\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION")]
    assert recorded_profile(nb.cells[0].source) is None
    nb.cells[0].source = with_run_record(nb.cells[0].source, run_record("quick", 3.2, machine="a test box"))
    nb.cells[0].source = with_run_record(nb.cells[0].source, run_record("full", 41.7, "results/b.md", "a test box"))
    title = nb.cells[0].source
    assert title.startswith("# Lab\n\nIntro.\n\n<!-- run record") and title.count("run record:") == 1
    assert recorded_profile(title) == "full" and "42 min in all" in title and "`results/b.md`" in title
    assert "a test box" in title and "quick" not in title
    tmpl = make_template(nb, "x.ipynb")
    assert tmpl.cells[1].source == "# Lab\n\nIntro."


def test_template_does_not_depend_on_the_python_that_last_ran_the_solution():
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("##TODO## set x\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION"))
    made = []
    for version in ("3.11.7", "3.12.1"):
        nb.metadata["language_info"] = {"name": "python", "version": version, "file_extension": ".py"}
        made.append(nbformat.writes(make_template(nb, "x.ipynb")))
    assert made[0] == made[1]
    assert nbformat.reads(made[0], as_version=4).metadata["language_info"] == {"name": "python"}


def test_regeneration_is_byte_for_byte_stable(tmp_path):
    for sol in SOLUTIONS:  # each at its registry path (extra/fc_gan.ipynb sits in a subfolder)
        (tmp_path / sol.relative_to(REPO_ROOT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sol, tmp_path / sol.relative_to(REPO_ROOT))
    assert main(["--root", str(tmp_path)]) == 0
    templates = tmp_path / "templates"
    first = {p.relative_to(templates).as_posix(): p.read_bytes() for p in templates.rglob("*.ipynb")}
    assert sorted(first) == sorted(p.relative_to(REPO_ROOT).as_posix() for p in SOLUTIONS)
    assert main(["--root", str(tmp_path)]) == 0
    assert {p.relative_to(templates).as_posix(): p.read_bytes() for p in templates.rglob("*.ipynb")} == first
    # a template in a subfolder that no registered lab makes is named too
    (templates / "extra" / "stray.ipynb").write_bytes(first["extra/fc_gan.ipynb"])
    assert stale_templates(tmp_path) == ["templates/extra/stray.ipynb: no solution notebook of a registered lab makes it"]
    # what nbformat reads back and writes again is the same text
    for name, data in first.items():
        assert nbformat.writes(nbformat.reads(data.decode(), as_version=4)) + "\n" == data.decode()


def test_check_fails_on_a_stale_or_missing_template(tmp_path, capsys):
    shutil.copy(REPO_ROOT / "lab8_vanilla.ipynb", tmp_path / "lab8_vanilla.ipynb")
    assert main(["--root", str(tmp_path), "--check"]) == 1
    assert "templates/lab8_vanilla.ipynb: missing" in capsys.readouterr().err
    assert main(["--root", str(tmp_path)]) == 0
    assert main(["--root", str(tmp_path), "--check"]) == 0
    tmpl = template_path(tmp_path / "lab8_vanilla.ipynb")
    nb = nbformat.read(tmpl, as_version=4)
    nb.cells[5].source += "\n# edited by hand"
    nbformat.write(nb, tmpl)
    run = subprocess.run([sys.executable, "-m", "helpers.course.templates", "--check", "--root", str(tmp_path)],
                         cwd=REPO_ROOT, capture_output=True, text=True)
    assert run.returncode == 1 and "templates/lab8_vanilla.ipynb: stale" in run.stderr, run.stderr
    tmpl.unlink()
    (tmp_path / "templates" / "old_lab.ipynb").write_text("{}")
    assert main(["--root", str(tmp_path)]) == 0
    assert main(["--root", str(tmp_path), "--check"]) == 1
    assert "old_lab.ipynb: no solution notebook" in capsys.readouterr().err


def test_committed_templates_are_current():
    assert stale_templates(REPO_ROOT) == [], "run `python -m helpers.course.templates`"


def test_template_run_headless_stops_at_the_check_of_the_first_todo(solution, tmp_path, lab_dirs):
    tmpl = _template(solution)
    path = tmp_path / solution.name
    nbformat.write(tmpl, path)
    # The first TODO cell only defines its class or functions; the test cell right after it calls them.
    first = next(i for i, c in enumerate(tmpl.cells) if c.cell_type == "code" and "##TODO##" in c.source)
    first_check = tmpl.cells[first + 1]
    assert "-test-" in first_check.id and first_check.metadata["nbgrader"]["grade"]
    with pytest.raises(CellExecutionError) as info:
        execute_notebook(path, "smoke", timeout=300)  # kernel runs in the repository root
    err = info.value
    assert err.ename == "NotImplementedError", str(err)[-3000:]
    failing_cell = str(err).split("------------------")[1].strip("\n")
    assert failing_cell == first_check.source.strip("\n"), f"stopped at a later cell:\n{failing_cell[:500]}"


def test_labs_come_from_the_registry_and_need_not_sit_at_the_root(tmp_path, monkeypatch):
    from dataclasses import replace

    from helpers.course import templates
    from helpers.course.labs import LABS, lab_named

    assert lab_notebooks(REPO_ROOT) == [lab.notebook_path() for lab in LABS]
    moved = replace(lab_named("vanilla"), notebook="labs/part1/lab8_vanilla.ipynb",
                    template="student/part1/lab8_vanilla.ipynb")
    monkeypatch.setattr(templates, "LABS", [moved])
    (tmp_path / "labs" / "part1").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "lab8_vanilla.ipynb", tmp_path / "labs" / "part1" / "lab8_vanilla.ipynb")
    assert lab_notebooks(tmp_path) == [tmp_path / "labs" / "part1" / "lab8_vanilla.ipynb"]
    assert main(["--root", str(tmp_path), "--check"]) == 1
    assert main(["--root", str(tmp_path)]) == 0
    written = tmp_path / "student" / "part1" / "lab8_vanilla.ipynb"
    assert written.read_bytes() == render_template(REPO_ROOT / "lab8_vanilla.ipynb").encode("utf-8")
    assert main(["--root", str(tmp_path), "--check"]) == 0


# ----------------------------------------------------------------------------- nbgrader metadata
def _lab(name):
    from helpers.course.labs import lab_named

    return lab_named(name)


def test_solution_notebooks_carry_the_generated_nbgrader_metadata():
    from helpers.course.labs import ANSWER_POINTS, POINTS, answer_cell_id, lab_answer_points, lab_points
    from helpers.course.templates import metadata_problems

    assert metadata_problems(REPO_ROOT) == [], "run `python -m helpers.course.templates`"
    for solution in SOLUTIONS:
        lab = next(lab for lab in __import__("helpers.course.labs", fromlist=["LABS"]).LABS
                   if lab.notebook_path() == solution)
        nb = nbformat.read(solution, as_version=4)
        meta = {c.id: c.metadata.get("nbgrader") for c in nb.cells}
        # Written independently of helpers.course.nbgrader_cells: what each kind of cell must carry.
        for c in nb.cells:
            m = meta[c.id]
            if c.cell_type == "code" and SOLUTION_REGION.search(c.source):
                assert m and m["solution"] and not m["grade"] and not m["locked"], c.id
            elif c.id.startswith(f"{lab.name}-test-"):
                assert m and m["grade"] and m["locked"] and not m["solution"] and m["points"] > 0, c.id
            elif c.id.startswith(f"{lab.name}-answer-"):
                assert m and m["solution"] and m["grade"] and not m["locked"], c.id
            else:
                assert m is None, c.id
            if m:
                assert m["schema_version"] == 3 and m["task"] is False and re.fullmatch(r"[A-Za-z0-9_-]+", m["grade_id"])
        assert nb.cells[1].metadata.get("nbgrader") is None  # the setup cell
        assert all(m is None for c, m in zip(nb.cells, meta.values()) if "parameters" in c.metadata.get("tags", []))
        tests = [m for m in meta.values() if m and m["grade"] and not m["solution"]]
        assert sum(m["points"] for m in tests) == sum(lab_points(lab.name).values())
        answers = {i: m["points"] for i, m in meta.items() if m and m["grade"] and m["solution"]}
        assert answers == {answer_cell_id(a): p for a, p in lab_answer_points(lab.name).items()}
        # a check call or a hidden test sits in a test cell, never in a solution cell
        for c in nb.cells:
            if c.cell_type == "code" and (re.search(r"^check_\w+\(", c.source, re.M) or "BEGIN HIDDEN TESTS" in c.source):
                assert c.id.startswith(f"{lab.name}-test-"), c.id
    assert set(POINTS).isdisjoint(ANSWER_POINTS)


def test_metadata_drift_is_reported_and_rewritten_without_touching_anything_else(tmp_path, capsys):
    shutil.copy(REPO_ROOT / "lab8_vanilla.ipynb", tmp_path / "lab8_vanilla.ipynb")
    assert main(["--root", str(tmp_path)]) == 0
    path = tmp_path / "lab8_vanilla.ipynb"
    nb = nbformat.read(path, as_version=4)
    test_cell = next(i for i, c in enumerate(nb.cells) if c.id == "vanilla-test-generator")
    nb.cells[test_cell].metadata["nbgrader"]["points"] = 99
    del nb.cells[test_cell - 1].metadata["nbgrader"]
    nb.cells[2].metadata["nbgrader"] = {"grade": False, "grade_id": "x", "locked": True, "schema_version": 3,
                                        "solution": False, "task": False}
    nbformat.write(nb, path)
    capsys.readouterr()
    assert main(["--root", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert f"cell {test_cell} (id vanilla-test-generator): nbgrader metadata differs in points" in err, err
    assert f"cell {test_cell - 1} (id {nb.cells[test_cell - 1].id}): nbgrader metadata missing" in err
    assert f"cell 2 (id {nb.cells[2].id}): nbgrader metadata not expected" in err
    assert main(["--root", str(tmp_path)]) == 0
    assert path.read_bytes() == (REPO_ROOT / "lab8_vanilla.ipynb").read_bytes()  # outputs, sources: all as before
    assert main(["--root", str(tmp_path), "--check"]) == 0


@pytest.mark.parametrize("edit, message", [
    # a check call back in the solution cell
    (lambda nb: _move_check_into_solution(nb), "holds a solution region and tests vanilla.generator"),
    # a POINTS row that no cell tests
    (lambda nb: _drop_cell(nb, "vanilla-test-discriminator"), "no cell tests the POINTS row(s) vanilla.discriminator"),
    # a hidden test whose row is not in POINTS
    (lambda nb: _edit(nb, "vanilla-test-generator", "hidden test vanilla.generator_latent_dim",
                      "hidden test vanilla.generator_other"),
     "(id vanilla-test-generator): tests vanilla.generator_other, which is not a row of POINTS"),
    # the same row tested twice
    (lambda nb: _edit(nb, "vanilla-generate-samples", "samples = generate(64, seed=0)",
                      "check_generate(generate, shape=(28, 28))\nsamples = generate(64, seed=0)"),
     "tests vanilla.generate, which "),
    # an answer cell with the question inside it, and one whose id has no row in ANSWER_POINTS
    (lambda nb: _edit(nb, "vanilla-answer-dc", "### BEGIN SOLUTION", "Your answer:\n### BEGIN SOLUTION"),
     "(id vanilla-answer-dc): an answer cell must be one solution region and nothing else (text at line 1)"),
    (lambda nb: _rename(nb, "vanilla-answer-dc", "vanilla-answer-dcgan"),
     "(id vanilla-answer-dcgan): an answer cell whose id is no row of ANSWER_POINTS"),
    (lambda nb: _drop_cell(nb, "vanilla-answer-latent"), "no answer cell for the ANSWER_POINTS row(s) vanilla.answer_latent"),
])
def test_metadata_errors_name_the_cell_and_the_row(tmp_path, capsys, edit, message):
    path = tmp_path / "lab8_vanilla.ipynb"
    nb = nbformat.read(REPO_ROOT / "lab8_vanilla.ipynb", as_version=4)
    edit(nb)
    nbformat.write(nb, path)
    capsys.readouterr()
    assert main(["--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert message in err and "lab8_vanilla.ipynb" in err, err
    assert main(["--root", str(tmp_path), "--check"]) == 1


def test_a_check_call_no_gradedcheck_names_is_an_error(tmp_path, capsys, monkeypatch):
    from helpers.checks import vanilla

    shutil.copy(REPO_ROOT / "lab8_vanilla.ipynb", tmp_path / "lab8_vanilla.ipynb")
    monkeypatch.setattr(vanilla, "GRADED", [r for r in vanilla.GRADED if r.id != "vanilla.losses"])
    assert main(["--root", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert "(id vanilla-test-losses), line 1: calls check_vanilla_losses, which no GradedCheck of " \
           "helpers.checks.vanilla names" in err, err


def _cell(nb, cell_id):
    return next(c for c in nb.cells if c.id == cell_id)


def _edit(nb, cell_id, old, new):
    cell = _cell(nb, cell_id)
    assert old in cell.source
    cell.source = cell.source.replace(old, new)


def _drop_cell(nb, cell_id):
    nb.cells = [c for c in nb.cells if c.id != cell_id]


def _rename(nb, cell_id, new_id):
    _cell(nb, cell_id)["id"] = new_id


def _move_check_into_solution(nb):
    index = next(i for i, c in enumerate(nb.cells) if c.id == "vanilla-test-generator")
    nb.cells[index - 1].source += "\n\n\n" + nb.cells[index].source
    del nb.cells[index]
