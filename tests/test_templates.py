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
    for sol in SOLUTIONS:
        shutil.copy(sol, tmp_path / sol.name)
    assert main(["--root", str(tmp_path)]) == 0
    first = {p.name: p.read_bytes() for p in (tmp_path / "templates").glob("*.ipynb")}
    assert sorted(first) == sorted(p.name for p in SOLUTIONS)
    assert main(["--root", str(tmp_path)]) == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "templates").glob("*.ipynb")} == first
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


def test_template_run_headless_stops_at_the_first_todo_cell(solution, tmp_path, lab_dirs):
    tmpl = _template(solution)
    path = tmp_path / solution.name
    nbformat.write(tmpl, path)
    first_todo = next(c for c in tmpl.cells if c.cell_type == "code" and "##TODO##" in c.source)
    with pytest.raises(CellExecutionError) as info:
        execute_notebook(path, "smoke", timeout=300)  # kernel runs in the repository root
    err = info.value
    assert err.ename == "NotImplementedError", str(err)[-3000:]
    failing_cell = str(err).split("------------------")[1].strip("\n")
    assert failing_cell == first_todo.source.strip("\n"), f"stopped at a later cell:\n{failing_cell[:500]}"


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
