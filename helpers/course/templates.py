"""Student templates and nbgrader metadata, generated from the solution notebooks: one source of truth.

    python -m helpers.course.templates            # nbgrader metadata into, then templates/<notebook>.ipynb from,
                                                  # every lab notebook
    python -m helpers.course.templates --check    # exit 1, naming file and cell, when either is stale (CI)
    python -m helpers.course.templates --fix      # first insert a generated ##TODO## line above each region lacking one

The nbgrader cell metadata of the solution notebooks comes from the tables of points
(:mod:`helpers.course.nbgrader_cells` says which cell gets what). The solution notebooks are the labs of ``helpers.course.labs.LABS`` (each record names its notebook and
its template, relative to the repository root). A template is the same notebook with these changes
and no others:

* each nbgrader solution region (``### BEGIN SOLUTION`` ... ``### END SOLUTION``) of a code cell is
  replaced, at the indentation of its ``BEGIN`` line, by nbgrader's code stub::

      # YOUR CODE HERE
      raise NotImplementedError()

  What to implement is written in the solution notebook itself, right above the region, at its
  indentation: a ``##TODO## <description>`` line, continued by ``#   <more>`` lines, which the
  template keeps (so ``nbgrader generate_assignment``, whose ClearSolutions can only put one fixed
  stub in place of a region, gives the same cell). A region without its ``##TODO##`` line is an
  error; ``--fix`` inserts one built from the notebook: the nearest ``TODO`` heading in the markdown
  above the cell, the function or class the region sits in with the first line of its docstring,
  and the names the region must define for the code around it (the attributes an ``__init__`` sets,
  the variables a function uses after the region, the names a top-level region assigns). Edit the
  inserted text freely. In markdown cells a region becomes ``YOUR ANSWER HERE``;
* ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` regions are removed, markers included;
* outputs and execution counts are cleared, and so are Colab-only metadata (notebook ``colab``,
  ``widgets``, ``gpuClass``; cell ``colab``, ``id``, ``outputId``, ``executionInfo``,
  ``cellView``) and nbclient's per-cell ``execution`` timings; ``accelerator`` and ``kernelspec``
  stay, and ``language_info`` is reduced to its ``name`` (the rest records the Python of whoever
  last ran the solution);
* the run record in the title cell (which run the solution's outputs come from:
  :mod:`helpers.course.run_record`) goes with the outputs;
* a markdown note at the top says which solution it was generated from and by what command.

Cell ids are kept (cells without one get ``cell-<index>``), and the file is written the way
``nbformat.write`` writes it, so the output depends only on the solution notebook: generating
twice gives the same bytes, and ``--check`` compares bytes.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
import textwrap
from pathlib import Path

import nbformat

from helpers.course.labs import LABS
from helpers.course.run_record import without_run_record
from helpers.course.nbgrader_cells import metadata_drift, write_metadata
from helpers.course.regions import _BEGIN, TemplateError, remove_hidden_tests, solution_regions

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR_NAME = "templates"
NOTE_CELL_ID = "template-note"
TODO_MARK = "##TODO##"

# Metadata Colab writes that means nothing elsewhere (a solution notebook must not carry it either).
COLAB_NOTEBOOK_KEYS = ("colab", "widgets", "gpuClass")
COLAB_CELL_KEYS = ("colab", "id", "outputId", "executionInfo", "cellView")
# Metadata a run leaves behind (nbclient's timings): fine in a solution, dropped with the outputs.
RUN_CELL_KEYS = ("execution",)

_TODO_HEADING = re.compile(r"^#+\s*(?P<text>TODO\b.*?)\s*$", re.MULTILINE)


def lab_notebooks(root: str | Path = REPO_ROOT) -> list[Path]:
    """The solution notebooks of the registered labs that exist under ``root``, in registry order."""
    return [lab.notebook_path(root) for lab in LABS if lab.notebook_path(root).is_file()]


def template_path(solution: str | Path, root: str | Path | None = None) -> Path:
    """Where the template of ``solution`` goes: its lab's template path, else ``<root>/templates/<name>``."""
    solution = Path(solution)
    root = Path(root or solution.parent)
    for lab in LABS:
        if lab.notebook_path(root).resolve() == solution.resolve():
            return lab.template_path(root)
    return root / TEMPLATE_DIR_NAME / solution.name


def colab_metadata(nb: nbformat.NotebookNode) -> list[str]:
    """The Colab-only metadata keys ``nb`` carries, as ``"metadata.colab"``/``"cell 3: metadata.id"``."""
    found = [f"metadata.{k}" for k in COLAB_NOTEBOOK_KEYS if k in nb.metadata]
    for i, cell in enumerate(nb.cells):
        found += [f"cell {i}: metadata.{k}" for k in COLAB_CELL_KEYS if k in cell.get("metadata", {})]
    return found


# ----------------------------------------------------------------------------- describing a region
def _todo_heading(cells: list, index: int) -> str | None:
    """The last ``TODO ...`` heading in the markdown cells above cell ``index``."""
    for cell in reversed(cells[:index]):
        if cell.cell_type == "markdown":
            found = _TODO_HEADING.findall(cell.source)
            if found:
                return found[-1]
    return None


def _enclosing_defs(tree: ast.AST | None, line: int) -> tuple[ast.ClassDef | None, ast.FunctionDef | None]:
    """The innermost function containing 1-based ``line``, and the class that function belongs to."""
    if tree is None:
        return None, None
    best_def, best_cls = None, None

    def visit(node: ast.AST, cls: ast.ClassDef | None) -> None:
        nonlocal best_def, best_cls
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if not child.lineno <= line <= (child.end_lineno or child.lineno):
                    continue
                if isinstance(child, ast.ClassDef):
                    visit(child, child)
                    continue
                best_def, best_cls = child, cls
                visit(child, None)
            else:
                visit(child, cls)

    visit(tree, None)
    return best_cls, best_def


def _first_doc_line(node: ast.AST | None) -> str:
    doc = ast.get_docstring(node) if node is not None else None
    return doc.strip().splitlines()[0].strip() if doc else ""


def _assigned(region: list[str]) -> tuple[list[str], list[str]]:
    """Names and ``self.`` attributes the region's statements assign, in order of appearance."""
    try:
        tree = ast.parse(textwrap.dedent("\n".join(region)))
    except SyntaxError:
        return [], []
    names: list[str] = []
    attrs: list[str] = []
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.col_offset == 0:
            names.append(node.name)
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.append(sub.id)
                elif (isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name)
                      and sub.value.id == "self" and isinstance(sub.ctx, ast.Store)):
                    attrs.append(f"self.{sub.attr}")
    return list(dict.fromkeys(names)), list(dict.fromkeys(attrs))


def _loaded_names(lines: list[str]) -> set[str]:
    """Names the code in ``lines`` reads (string contents and attribute names do not count)."""
    text = textwrap.dedent("\n".join(lines))
    try:
        tree = ast.parse(text)
    except SyntaxError:  # not a complete block: fall back to words outside quotes
        return set(re.findall(r"(?<![\w.])[A-Za-z_]\w*", re.sub(r"(['\"]).*?\1", "", text)))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _quote(items: list[str]) -> str:
    return ", ".join(f"`{x}`" for x in items)


def _describe(lines: list[str], begin: int, end: int, tree: ast.AST | None, heading: str | None) -> str:
    """What the region ``lines[begin+1:end]`` asks for, as one sentence or two (see module doc)."""
    region = lines[begin + 1:end]
    cls, func = _enclosing_defs(tree, begin + 1)
    names, attrs = _assigned(region)
    if func is not None and func.name == "__init__" and cls is not None:
        what = f"create the layers of `{cls.name}`"
        doc = _first_doc_line(func) or _first_doc_line(cls)
        what += f" ({doc.rstrip('.')})" if doc else ""
        what += f"; the solution stores them as {_quote(attrs)}." if attrs else "."
    elif func is not None:
        qual = f"{cls.name}.{func.name}" if cls is not None else func.name
        doc = _first_doc_line(func) or (_first_doc_line(cls) if func.name == "forward" else "")
        what = f"write the body of `{qual}`" + (f": {doc}" if doc else "")
        what += "" if what.endswith(".") else "."
        loaded = _loaded_names(lines[end + 1:(func.end_lineno or len(lines))])
        used = [n for n in names if n in loaded]
        if used:
            what += f" Set {_quote(used)}: the code below uses them."
    else:
        what = f"define {_quote(names)}." if names else "write the code for this step."
    if heading:
        number, _, title = heading.partition(":")
        prefix = f"{number.strip()} ({title.strip()})" if title.strip() else number.strip()
        return f"{prefix}: {what}"
    return what[:1].upper() + what[1:]


def _todo_lines(indent: str, description: str) -> list[str]:
    """The ``##TODO##`` line and its ``#   `` continuation lines, wrapped to 99 characters."""
    wrapped = textwrap.wrap(description, width=max(40, 99 - len(indent) - len(TODO_MARK) - 1),
                            break_long_words=False, break_on_hyphens=False)
    return [f"{indent}{TODO_MARK} {wrapped[0]}"] + [f"{indent}#   {w}" for w in wrapped[1:]]


def _has_todo_line(lines: list[str], begin: int) -> bool:
    """Whether the region starting at ``lines[begin]`` has its ``##TODO##`` line (and continuations) right above."""
    indent = _BEGIN.match(lines[begin]).group("indent")
    i = begin - 1
    while i >= 0 and lines[i].startswith(f"{indent}#   "):
        i -= 1
    return i >= 0 and lines[i].startswith(f"{indent}{TODO_MARK} ") and bool(lines[i][len(indent) + len(TODO_MARK):].strip())


# ----------------------------------------------------------------------------- cells and notebooks
def undescribed_regions(source: str, where: str = "cell") -> list[str]:
    """One message per solution region of a code cell without its ``##TODO##`` line right above it."""
    lines = source.split("\n")
    return [f"{where}, line {begin + 1}: the solution region has no `{TODO_MARK} <what to implement>` line "
            f"right above it (at its indentation). Write one, or run `python -m helpers.course.templates --fix` "
            f"to insert a generated one."
            for begin, _ in solution_regions(lines, where) if not _has_todo_line(lines, begin)]


def template_source(source: str, cell_type: str, where: str = "cell") -> str:
    """One cell's source with hidden tests removed and each solution region replaced (see module doc).

    Args:
        source: the solution cell's source.
        cell_type: ``"code"`` or ``"markdown"``.
        where: names the cell in error messages.

    Returns:
        The template cell's source.

    Raises:
        TemplateError: unmatched markers, or a code region without its ``##TODO##`` line.
    """
    if cell_type == "code":
        missing = undescribed_regions(source, where)
        if missing:
            raise TemplateError(missing[0])
    lines = remove_hidden_tests(source.split("\n"), where)
    out: list[str] = []
    pos = 0
    for begin, end in solution_regions(lines, where):
        out += lines[pos:begin]
        indent = _BEGIN.match(lines[begin]).group("indent")
        if cell_type == "code":
            out += [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]
        else:
            out.append(f"{indent}YOUR ANSWER HERE")
        pos = end + 1
    out += lines[pos:]
    return "\n".join(out)


def describe_regions(source: str, heading: str | None = None, where: str = "cell") -> str:
    """``source`` with a generated ``##TODO##`` line inserted above each code region that has none.

    Args:
        source: a code cell of a solution notebook.
        heading: the ``TODO ...`` heading above the cell, used in the description.
        where: names the cell in error messages.

    Returns:
        The new source (``source`` itself when every region already has its line).
    """
    lines = source.split("\n")
    regions = solution_regions(lines, where)
    missing = [begin for begin, _ in regions if not _has_todo_line(lines, begin)]
    if not missing:
        return source
    # Describe from the code as students will see it: without hidden tests (they never contain regions).
    visible = remove_hidden_tests(lines, where)
    try:
        tree = ast.parse("\n".join(visible))
    except SyntaxError:  # IPython magics and the like: describe without the syntax tree
        tree = None
    descriptions = [_describe(visible, b, e, tree, heading) for b, e in solution_regions(visible, where)]
    out: list[str] = []
    pos = 0
    for (begin, _), description in zip(regions, descriptions):
        if begin in missing:
            out += lines[pos:begin] + _todo_lines(_BEGIN.match(lines[begin]).group("indent"), description)
            pos = begin
    return "\n".join(out + lines[pos:])


def make_template(solution: nbformat.NotebookNode, solution_name: str) -> nbformat.NotebookNode:
    """The student template of a solution notebook (a new notebook; ``solution`` is not changed).

    Args:
        solution: the solution notebook (nbformat 4).
        solution_name: its file name, quoted in the note at the top.

    Returns:
        The template notebook.
    """
    nb = copy.deepcopy(solution)
    nb.nbformat, nb.nbformat_minor = 4, max(5, int(nb.get("nbformat_minor", 5)))
    for key in COLAB_NOTEBOOK_KEYS:
        nb.metadata.pop(key, None)
    if "language_info" in nb.metadata:
        nb.metadata["language_info"] = {"name": nb.metadata["language_info"].get("name", "python")}
    used_ids = {c.get("id") for c in solution.cells}
    for i, cell in enumerate(nb.cells):
        where = f"{solution_name}, cell {i} (id {cell.get('id')})"
        for key in COLAB_CELL_KEYS + RUN_CELL_KEYS:
            cell.metadata.pop(key, None)
        if not cell.get("id"):
            cell["id"] = f"cell-{i}"
            if cell["id"] in used_ids:
                raise TemplateError(f"{where}: has no id, and cell-{i} is taken by another cell.")
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if cell.cell_type in ("code", "markdown"):
            cell.source = template_source(cell.source, cell.cell_type, where)
        if i == 0 and cell.cell_type == "markdown":
            cell.source = without_run_record(cell.source)  # it describes the solution's outputs, which go
    if NOTE_CELL_ID in used_ids:
        raise TemplateError(f"{solution_name}: the cell id {NOTE_CELL_ID!r} is reserved for the template note.")
    note = nbformat.v4.new_markdown_cell(
        f"> **Student version.** Generated from `{solution_name}` by `python -m helpers.course.templates` "
        f"— do not edit this file in the repository: edit `{solution_name}` and run the command again.\n"
        f">\n"
        f"> Students: write your code where a cell says `{TODO_MARK}`, replacing the "
        f"`raise NotImplementedError()` line; the cell right after each TODO checks your code at once."
    )
    note["id"] = NOTE_CELL_ID
    nb.cells.insert(0, note)
    nbformat.validate(nb)
    return nb


def render_template(solution_path: str | Path) -> str:
    """The exact text of ``solution_path``'s template (what ``nbformat.write`` would write)."""
    solution_path = Path(solution_path)
    solution = nbformat.read(solution_path, as_version=4)
    text = nbformat.writes(make_template(solution, solution_path.name))
    return text if text.endswith("\n") else text + "\n"


def _undescribed(solution: Path) -> list[str]:
    """Every code region of ``solution`` without its ``##TODO##`` line, one message each."""
    nb = nbformat.read(solution, as_version=4)
    return [msg for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for msg in undescribed_regions(cell.source, f"{solution.name}, cell {i} (id {cell.get('id')})")]


def fix_descriptions(root: str | Path = REPO_ROOT) -> list[str]:
    """Insert a generated ``##TODO##`` line above every code region lacking one, in each lab's solution notebook.

    Only the sources of those cells change (outputs and metadata are kept). Returns one line per
    region described, naming notebook and cell.
    """
    done = []
    for solution in lab_notebooks(root):
        nb = nbformat.read(solution, as_version=4)
        changed = False
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            where = f"{solution.name}, cell {i} (id {cell.get('id')})"
            missing = undescribed_regions(cell.source, where)
            if missing:
                cell.source = describe_regions(cell.source, _todo_heading(nb.cells, i), where)
                done += missing
                changed = True
        if changed:
            nbformat.write(nb, solution)
    return done


def write_templates(root: str | Path = REPO_ROOT) -> list[Path]:
    """Write ``templates/<name>.ipynb`` for every lab notebook in ``root``; return the paths written."""
    written = []
    for solution in lab_notebooks(root):
        dst = template_path(solution, root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(render_template(solution).encode("utf-8"))
        written.append(dst)
    return written


def stale_templates(root: str | Path = REPO_ROOT) -> list[str]:
    """One line per template that is missing, differs from what would be generated, or has no solution."""
    root = Path(root)
    problems = []
    solutions = lab_notebooks(root)
    for solution in solutions:
        dst = template_path(solution, root)
        rel = dst.relative_to(root)
        undescribed = _undescribed(solution)
        if undescribed:
            problems += undescribed
        elif not dst.is_file():
            problems.append(f"{rel}: missing (template of {solution.name})")
        elif dst.read_bytes() != render_template(solution).encode("utf-8"):
            problems.append(f"{rel}: stale, differs from what {solution.name} generates")
    expected = {template_path(s, root).resolve() for s in solutions}
    for extra in sorted((root / TEMPLATE_DIR_NAME).rglob("*.ipynb")):  # templates mirror subfolders (extra/)
        if extra.resolve() not in expected:
            problems.append(f"{extra.relative_to(root)}: no solution notebook of a registered lab makes it")
    return problems


def metadata_problems(root: str | Path = REPO_ROOT) -> list[str]:
    """One line per cell of a lab's solution notebook whose nbgrader metadata is not what is generated."""
    problems = []
    for lab in LABS:
        path = lab.notebook_path(root)
        if path.is_file():
            problems += metadata_drift(nbformat.read(path, as_version=4), lab, path.name)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a template is stale or a notebook's nbgrader metadata differs")
    parser.add_argument("--fix", action="store_true",
                        help="first insert a generated ##TODO## line above each solution region lacking one")
    parser.add_argument("--root", default=str(REPO_ROOT), help="folder holding the solution notebooks")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not lab_notebooks(root):
        parser.error(f"no lab notebook of helpers.course.labs in {root}")
    if args.check and args.fix:
        parser.error("--check writes nothing; run --fix first, then --check")
    try:
        if args.fix:
            for line in fix_descriptions(root):
                print(f"described {line.split(': the solution region')[0]}")
        if args.check:
            problems = metadata_problems(root) + stale_templates(root)
            for line in problems:
                print(f"{'ERROR' if TODO_MARK in line else 'STALE'} {line}", file=sys.stderr)
            if problems:
                print("Run `python -m helpers.course.templates` (with `--fix` first when a region lacks its "
                      "##TODO## line) and commit the notebooks and templates.", file=sys.stderr)
                return 1
            print(f"Templates and nbgrader metadata are up to date ({len(lab_notebooks(root))} notebooks).")
            return 0
        undescribed = [msg for solution in lab_notebooks(root) for msg in _undescribed(solution)]
        if undescribed:
            raise TemplateError("\n".join(undescribed))
        for lab in LABS:
            if lab.notebook_path(root).is_file():
                for line in write_metadata(lab, root):
                    print(f"nbgrader metadata of {line.split(': nbgrader metadata')[0]}")
        for path in write_templates(root):
            print(f"wrote {path.relative_to(root)}")
        return 0
    except TemplateError as err:
        print(f"ERROR {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
