"""Grade a submitted lab notebook: run it headlessly, record every check, write JSON and Markdown.

    python -m helpers.course.grade SUBMISSION.ipynb [--lab vanilla|cwgan|malaria] [--out DIR] [--timeout S]

**Grading runs the student's code.** A submission can do anything its author could do on this
machine: read files, use the network, delete things, start processes. Run the grader in a
disposable environment (a throw-away container or VM, or at least a user account that owns nothing
of value), never on a machine with credentials or data you cannot lose. The precautions below make
accidents visible; they are not a sandbox.

What happens:

1. A scratch folder is made (``tempfile``): ``work/`` holds a pristine copy of the repository's
   ``helpers/`` (and its top-level ``*.py`` files) and of the submission, with its own
   ``GANLAB_CHECKPOINTS`` and ``GANLAB_OUTPUT``; ``guard/`` beside it holds sentinel files. Data
   come from ``$GANLAB_DATA``, else ``./data`` or ``../shared/data`` beside the repository.
2. The notebook runs in a fresh kernel (nbclient) in the ``smoke`` profile, with ``work/`` as its
   working folder, ``allow_errors=True`` so that a failing cell does not hide the checks after it,
   and one time limit for the whole run (``--timeout``; a cell that hangs is stopped there and the
   kernel killed). A notebook whose parameters cell sets ``PROFILE`` gets ``PROFILE = "smoke"``
   injected after that cell.
3. Each check the lab's solution notebook calls (``check_generator(...)``...) is looked up in the
   cell that calls it in the submission: the ``✓ <name>: passed`` line it prints means passed; the
   error the cell raised means failed (``CheckFailed``), not implemented (``NotImplementedError``)
   or error (anything else). A probe cell appended at the end tests the ``generate`` contract
   (array type, shape, dtype, range, seeds, bad arguments, G's mode restored).
4. The files under ``guard/``, the submission file, the repository's ``helpers/`` and the data
   folder are listed (size and modification time) before and after the run; anything deleted,
   changed or added there is reported, as is a change to the scratch copy of ``helpers/``.
5. ``<out>/<name>.grade.json``, ``<out>/<name>.grade.md`` and the executed notebook
   ``<out>/<name>.executed.ipynb`` are written (default ``<out>``: ``./grades``).

The grader itself never fails on a submission: a crash, a hang, a dead kernel or an unreadable
notebook ends up in the report, and the exit code is 0. It is non-zero only for usage errors (no
such file, a lab that cannot be told, bad arguments).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_NOTEBOOKS = {"vanilla": "lab8_vanilla.ipynb", "cwgan": "lab8_cwgan.ipynb", "malaria": "dcgan_malaria.ipynb"}
DEFAULT_TIMEOUT = 900
PROBE_MARK = "GANLAB-GRADE-PROBE "
MAX_SNAPSHOT_ENTRIES = 50_000
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PASSED_LINE = re.compile(r"^✓ (?P<name>.+?): passed\s*$", re.M)

# What ``generate`` must do in each lab; ``required: False`` records the probe without grading it.
GENERATE_CONTRACTS: dict[str, dict[str, Any]] = {
    "vanilla": {"args": [], "shape": [28, 28], "required": True, "classes": 0},
    "cwgan": {"args": [3], "shape": [28, 28], "required": True, "classes": 10},
    "malaria": {"args": [], "shape": None, "required": True, "classes": 0},  # (n, 3, S, S): S from the config
}

PROBE_SOURCE = r'''
# Added by helpers.course.grade: tests the generate contract and prints one line of JSON.
def __ganlab_grade_probe(config):
    import json
    import numpy as np
    import torch
    items, state = [], {}

    def record(name, test, needs_sample=True):
        if needs_sample and "a" not in state:
            items.append({"name": name, "ok": False, "detail": "not tested: the first call failed"})
            return
        try:
            ok, detail = test()
        except NotImplementedError:
            ok, detail = False, "NotImplementedError: generate is not implemented yet"
        except BaseException as err:  # anything the submission raises is a result, not a grader crash
            ok, detail = False, f"{type(err).__name__}: {err}"
        items.append({"name": name, "ok": bool(ok), "detail": str(detail)[:400]})

    info = {"items": items}
    try:
        import helpers
        info["helpers"] = str(getattr(helpers, "__file__", ""))
    except BaseException as err:
        info["helpers"] = f"not importable: {type(err).__name__}: {err}"
    gen = globals().get("generate")
    info["defined"] = callable(gen)
    if callable(gen):
        args, shape = list(config["args"]), config["shape"]
        shown = "".join(f", {a!r}" for a in args)

        def call(n, seed, *override):
            return gen(n, *(override or args), seed=seed)

        def first():
            a = call(5, 0)
            if not isinstance(a, np.ndarray):
                return False, f"returned {type(a).__name__}, not a numpy array"
            want = None if shape is None else (5, *shape)
            ok = (want is None or a.shape == want) and a.dtype == np.float32
            if ok:
                state["a"] = a
            return ok, f"shape {a.shape}, dtype {a.dtype}" + ("" if ok else f"; expected {want or '(5, ...)'} float32")

        wanted = "a float32 array" + ("" if shape is None else f" of shape {(5, *shape)}")
        record(f"generate(5{shown}, seed=0) returns {wanted}", first, needs_sample=False)
        record("values lie in [0, 1]", lambda: (0 <= state["a"].min() and state["a"].max() <= 1,
                                                f"[{state['a'].min():.3f}, {state['a'].max():.3f}]"))
        record("the same seed gives the same images", lambda: (np.array_equal(call(5, 0), state["a"]), ""))
        record("another seed gives other images", lambda: (not np.array_equal(call(5, 1), state["a"]), ""))
        def raises(err, *call_args):
            def attempt():
                try:
                    gen(*call_args)
                except err:
                    return True, ""
                except BaseException as other:
                    return False, f"raised {type(other).__name__}: {other}"
                return False, "raised nothing"
            return attempt

        for bad, err in ((0, ValueError), (-2, ValueError), (2.5, TypeError), ("3", TypeError)):
            record(f"generate({bad!r}{shown}) raises {err.__name__}", raises(err, bad, *args))
        g_name = "G_ema" if isinstance(globals().get("G_ema"), torch.nn.Module) else "G"  # the one sampled from
        model = globals().get(g_name)
        if isinstance(model, torch.nn.Module):
            def modes():
                was = model.training
                try:
                    model.train()
                    call(2, 0)
                    kept_train = model.training
                    model.eval()
                    call(2, 0)
                    kept_eval = not model.training
                finally:
                    model.train(was)
                return kept_train and kept_eval, "" if kept_train and kept_eval else f"{g_name}'s mode changed"
            record(f"{g_name}'s train/eval mode is the same after the call", modes)
        names = globals().get("FASHION_CLASSES")
        for c in range(config["classes"]):
            def per_class(c=c):
                a = call(3, 0, c)
                ok = isinstance(a, np.ndarray) and a.shape == (3, *shape) and a.dtype == np.float32
                if ok and names is not None:
                    ok = np.array_equal(call(3, 0, names[c]), a)
                    return ok, "" if ok else f"generate(3, {names[c]!r}) differs from generate(3, {c})"
                return ok, f"{type(a).__name__} {getattr(a, 'shape', '')} {getattr(a, 'dtype', '')}"
            record(f"class {c}" + (f" ({names[c]})" if names is not None else "") + ": by index and by name", per_class)
        if config["classes"]:
            for bad_c in (config["classes"], -1, "no such class"):
                record(f"generate(2, {bad_c!r}) raises ValueError", raises(ValueError, 2, bad_c))
    print("''' + PROBE_MARK + r'''" + json.dumps(info))


__ganlab_grade_probe(__import__("json").loads(CONFIG_JSON))
'''


# ----------------------------------------------------------------------------- which lab, which checks
def infer_lab(submission: str | Path, nb: nbformat.NotebookNode | None = None) -> str | None:
    """The lab of a submission: from its file name (``lab8_cwgan_jdoe.ipynb``), else its ``setup_lab`` call."""
    stem = Path(submission).stem.lower()
    for lab, name in LAB_NOTEBOOKS.items():
        if Path(name).stem in stem:
            return lab
    found = [lab for lab in LAB_NOTEBOOKS if lab in stem]
    if len(found) == 1:
        return found[0]
    if nb is not None:
        for cell in nb.cells:
            m = re.search(r"setup_lab\(\s*[\"'](\w+)[\"']", cell.get("source", "")) if cell.cell_type == "code" else None
            if m and m.group(1) in LAB_NOTEBOOKS:
                return m.group(1)
    return None


def check_names(checks_dir: Path = REPO_ROOT / "helpers" / "checks") -> set[str]:
    """The public ``check_*`` functions defined in ``helpers/checks/`` (read, not imported)."""
    names = set()
    for path in checks_dir.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("check_")}
    return names


def check_calls(source: str, names: set[str]) -> list[str]:
    """The checks a cell calls at top level (not inside a function), in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # magics or broken code: fall back to unindented call lines
        return [m.group(1) for m in re.finditer(r"^(check_\w+)\s*\(", source, re.M) if m.group(1) in names]
    calls = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            func = stmt.value.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name in names:
                calls.append(name)
    return calls


def expected_checks(lab: str, names: set[str], fallback: nbformat.NotebookNode | None = None) -> list[str]:
    """The checks the lab's solution notebook calls (else its template's, else the submission's)."""
    for path in (REPO_ROOT / LAB_NOTEBOOKS[lab], REPO_ROOT / "templates" / LAB_NOTEBOOKS[lab]):
        if path.is_file():
            nb = nbformat.read(path, as_version=4)
            break
    else:
        nb = fallback
    if nb is None:
        return []
    return [c for cell in nb.cells if cell.cell_type == "code" for c in check_calls(cell.source, names)]


# ----------------------------------------------------------------------------- files outside the work folder
def snapshot(paths: list[Path]) -> dict[str, Any]:
    """``{file: [size, mtime_ns]}`` under ``paths`` (``__pycache__`` and ``.git`` skipped)."""
    files: dict[str, list[int]] = {}
    truncated = False
    for root in paths:
        root = Path(root)
        if root.is_file():
            st = root.stat()
            files[str(root)] = [st.st_size, st.st_mtime_ns]
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", ".git"))
            for name in sorted(filenames):
                if len(files) >= MAX_SNAPSHOT_ENTRIES:
                    truncated = True
                    break
                path = Path(dirpath) / name
                try:
                    st = path.lstat()
                except OSError:
                    continue
                files[str(path)] = [st.st_size, st.st_mtime_ns]
    return {"files": files, "truncated": truncated}


def compare_snapshots(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    """Files deleted, changed and added between two snapshots."""
    b, a = before["files"], after["files"]
    return {"deleted": sorted(set(b) - set(a)), "changed": sorted(p for p in set(b) & set(a) if b[p] != a[p]),
            "added": sorted(set(a) - set(b))}


def _make_guard(guard: Path) -> None:
    (guard / "nested").mkdir(parents=True, exist_ok=True)
    (guard / "SENTINEL.txt").write_text("helpers.course.grade: a submission must not touch this file.\n")
    (guard / "nested" / "sentinel.bin").write_bytes(bytes(range(256)))


# ----------------------------------------------------------------------------- running the notebook
def _kernel_env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GANLAB_PROFILE": "smoke", "GANLAB_CHECKPOINTS": str(work / "checkpoints"),
                "GANLAB_OUTPUT": str(work / "outputs"), "PYTHONUNBUFFERED": "1"})
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    if not env.get("GANLAB_DATA"):
        for candidate in (REPO_ROOT / "data", REPO_ROOT.parent / "shared" / "data"):  # local, course machines
            if candidate.is_dir():
                env["GANLAB_DATA"] = str(candidate)
                break
    # The kernel must import the scratch copy of helpers/, not the repository's.
    keep = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != REPO_ROOT]
    if keep:
        env["PYTHONPATH"] = os.pathsep.join(keep)
    else:
        env.pop("PYTHONPATH", None)
    return env


def _prepare(nb: nbformat.NotebookNode, lab: str) -> tuple[nbformat.NotebookNode, list[int | None], list[str]]:
    """The notebook to run (profile pinned, probe appended) and each cell's index in the submission."""
    run = nbformat.v4.new_notebook(metadata=nb.metadata)
    origin: list[int | None] = []
    notes = []
    for i, cell in enumerate(nb.cells):
        run.cells.append(cell)
        origin.append(i)
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "code" and "parameters" in tags and re.search(r"^PROFILE\s*=", cell.source, re.M):
            run.cells.append(nbformat.v4.new_code_cell('PROFILE = "smoke"  # injected by helpers.course.grade'))
            origin.append(None)
            notes.append(f"`PROFILE = \"smoke\"` injected after cell {i + 1} (the parameters cell).")
    probe = nbformat.v4.new_code_cell(PROBE_SOURCE.strip().replace("CONFIG_JSON", repr(json.dumps(GENERATE_CONTRACTS[lab]))))
    probe.metadata["tags"] = ["ganlab-grade-probe"]
    run.cells.append(probe)
    origin.append(None)
    return run, origin, notes


def _execute(run: nbformat.NotebookNode, work: Path, timeout: float) -> dict[str, Any]:
    """Run the cells in order within ``timeout`` seconds in all; say how far it got and why it stopped."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    info: dict[str, Any] = {"stopped": None, "stopped_cell": None, "executed": []}
    deadline = time.monotonic() + timeout
    client = NotebookClient(run, timeout=int(timeout), kernel_name="python3", allow_errors=True,
                            shutdown_kernel="immediate", startup_timeout=min(120, max(30, int(timeout))),
                            resources={"metadata": {"path": str(work)}})
    client.reset_execution_trackers()
    index = None
    try:
        with client.setup_kernel(env=_kernel_env(work), cwd=str(work)):
            for index, cell in enumerate(run.cells):
                if cell.cell_type != "code":
                    continue
                left = deadline - time.monotonic()
                if left < 1:
                    info["stopped"], info["stopped_cell"] = "timeout", index
                    break
                client.timeout = max(1, int(left))
                client.execute_cell(cell, index, execution_count=len(info["executed"]) + 1)
                info["executed"].append(index)
    except CellTimeoutError:
        info["stopped"], info["stopped_cell"] = "timeout", index
    except DeadKernelError as err:
        info["stopped"], info["stopped_cell"] = "kernel died", index
        info["detail"] = str(err)[:500]
    except Exception as err:  # noqa: BLE001 - the kernel would not start, or nbclient failed
        info["stopped"], info["stopped_cell"] = "execution error", index
        info["detail"] = f"{type(err).__name__}: {err}"[:2000]
    return info


# ----------------------------------------------------------------------------- reading the results
def _text(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _error(cell: nbformat.NotebookNode) -> dict[str, str] | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            tb = _ANSI.sub("", "\n".join(out.get("traceback", [])))
            return {"ename": out.get("ename", ""), "evalue": _ANSI.sub("", out.get("evalue", ""))[:3000],
                    "traceback": tb[-4000:]}
    return None


def _status(ename: str) -> str:
    return {"CheckFailed": "failed", "NotImplementedError": "not implemented"}.get(ename, "error")


def _collect_checks(run, origin, info, expected: list[str], names: set[str]) -> list[dict[str, Any]]:
    executed = set(info["executed"])
    calls = []  # (check, cell position in run, position within the cell)
    for pos, cell in enumerate(run.cells):
        if cell.cell_type == "code" and origin[pos] is not None:
            calls += [(name, pos, k) for k, name in enumerate(check_calls(cell.source, names))]
    results = []
    used: set[tuple[int, int]] = set()
    todo_missing = False  # an earlier TODO raised NotImplementedError: later NameErrors come from it
    for name in expected:
        match = next(((pos, k) for n, pos, k in calls if n == name and (pos, k) not in used), None)
        if match is None:
            results.append({"check": name, "cell": None, "status": "missing",
                            "message": f"the submission does not call {name}(...) any more"})
            continue
        used.add(match)
        pos, k = match
        cell = run.cells[pos]
        entry = {"check": name, "cell": origin[pos] + 1, "status": "", "message": ""}
        passed = _PASSED_LINE.findall(_text(cell))
        err = _error(cell)
        if k < len(passed):
            entry.update(status="passed", message=f"✓ {passed[k]}: passed")
        elif err is not None and k == len(passed):
            detail = err["evalue"] or ("the TODO is not written yet" if err["ename"] == "NotImplementedError" else "")
            status = _status(err["ename"])
            if err["ename"] == "NameError" and todo_missing:
                status, detail = "not implemented", f"{detail} (an earlier TODO is not written yet)"
            todo_missing = todo_missing or err["ename"] == "NotImplementedError"
            entry.update(status=status, message=f"{err['ename']}: {detail}".rstrip(": "))
        elif pos == info["stopped_cell"]:
            entry.update(status="not run", message=f"the run stopped in this cell: {info['stopped']}")
        elif pos not in executed:
            entry.update(status="not run", message=f"the cell did not run (the run stopped earlier: {info['stopped']})")
        else:
            entry.update(status="not run", message="an earlier statement in the same cell failed")
        results.append(entry)
    return results


def _collect_probe(cell: nbformat.NotebookNode | None, required: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"required": required, "status": "not run", "items": []}
    if cell is None:
        return result
    m = re.search(re.escape(PROBE_MARK) + r"(\{.*\})", _text(cell))
    if not m:
        err = _error(cell)
        result["detail"] = f"{err['ename']}: {err['evalue']}" if err else "the probe printed nothing"
        return result
    data = json.loads(m.group(1))
    result["helpers"] = data.get("helpers")
    result["items"] = data.get("items", [])
    if not data.get("defined"):
        result.update(status="missing", detail="the notebook defines no function `generate`")
    else:
        result["status"] = "passed" if result["items"] and all(i["ok"] for i in result["items"]) else "failed"
    return result


# ----------------------------------------------------------------------------- the report
def _summary(report: dict[str, Any]) -> str:
    checks = report["checks"]
    n_ok = sum(c["status"] == "passed" for c in checks)
    parts = [f"{n_ok}/{len(checks)} checks passed"]
    first_bad = next((c for c in checks if c["status"] != "passed"), None)
    if first_bad:
        parts.append(f"first not passed: {first_bad['check']} ({first_bad['status']})")
    gen = report["generate"]
    if gen["required"] or gen["status"] not in ("missing", "not run"):
        parts.append(f"generate contract {gen['status']}")
    parts += report["problems"]
    return "; ".join(parts)


def _problems(report: dict[str, Any]) -> list[str]:
    ex, problems = report["execution"], []
    if ex.get("stopped") == "timeout":
        problems.append(f"timed out after {report['timeout_s']} s in cell {ex.get('stopped_cell_number')}")
    elif ex.get("stopped") == "kernel died":
        problems.append(f"the kernel died (crash, exit or out of memory) in cell {ex.get('stopped_cell_number')}")
    elif ex.get("stopped"):
        problems.append(f"could not execute the notebook: {ex.get('detail', ex['stopped'])}")
    if ex.get("errored_cells"):
        problems.append("cells with errors: " + ", ".join(str(e["cell"]) for e in ex["errored_cells"]))
    integ = report["integrity"]
    outside = integ["deleted"] + integ["changed"] + integ["added"]
    if outside:
        problems.append(f"touched {len(outside)} file(s) outside its folder "
                        f"({len(integ['deleted'])} deleted, {len(integ['changed'])} changed, {len(integ['added'])} added)")
    if integ["helpers_copy"]:
        problems.append(f"changed the grader's copy of helpers/ ({len(integ['helpers_copy'])} file(s))")
    helpers_from = report["generate"].get("helpers")
    if helpers_from and report.get("workdir") and not os.path.realpath(helpers_from).startswith(
            os.path.realpath(report["workdir"])):
        problems.append(f"imported helpers from {helpers_from}, not from the grader's copy")
    return problems


def _md_cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", "<br>")


def render_markdown(report: dict[str, Any]) -> str:
    """The human-readable report."""
    icon = {"passed": "✓", "failed": "✗", "not implemented": "✗", "error": "✗"}
    lines = [f"# Grading report: `{Path(report['submission']).name}` ({report['lab']} lab)", "",
             f"**{'All passed' if report['all_passed'] else 'Not passed'}**: {report['summary']}.", "",
             "## Checks", "", "| check | cell | result | details |", "|---|---|---|---|"]
    for c in report["checks"]:
        lines.append(f"| `{c['check']}` | {c['cell'] or '—'} | {icon.get(c['status'], '–')} {c['status']} | "
                     f"{_md_cell(c['message'][:600])} |")
    if not report["checks"]:
        lines.append("| (none found) | | | |")
    gen = report["generate"]
    lines += ["", f"## The `generate` contract: {gen['status']}" + ("" if gen["required"] else " (not graded in this lab)"), ""]
    if gen.get("detail"):
        lines += [_md_cell(gen["detail"]), ""]
    if gen["items"]:
        lines += ["| requirement | result | details |", "|---|---|---|"]
        lines += [f"| {_md_cell(i['name'])} | {'✓' if i['ok'] else '✗'} | {_md_cell(i['detail'])} |" for i in gen["items"]]
    ex = report["execution"]
    lines += ["", "## Execution", "",
              f"- profile `smoke`, time limit {report['timeout_s']} s, took {report['duration_s']} s",
              f"- ran {ex['cells_run']} of {ex['code_cells']} code cells"
              + (f"; stopped: {ex['stopped']} in cell {ex.get('stopped_cell_number')}" if ex.get("stopped") else
                 " (the whole notebook)")]
    lines += [f"- {note}" for note in ex.get("notes", [])]
    for e in ex.get("errored_cells", []):
        lines.append(f"- cell {e['cell']} raised `{e['ename']}`: {_md_cell(e['evalue'][:300])}")
    integ = report["integrity"]
    lines += ["", "## Files outside the submission's folder", ""]
    if not any(integ[k] for k in ("deleted", "changed", "added", "helpers_copy")):
        lines.append(f"No change in the {integ['watched_files']} files watched.")
    for key in ("deleted", "changed", "added"):
        lines += [f"- {key}: `{p}`" for p in integ[key][:50]]
    lines += [f"- changed in the grader's copy of helpers/: `{p}`" for p in integ["helpers_copy"][:50]]
    if report["grader_errors"]:
        lines += ["", "## Grader errors", "", *[f"- {_md_cell(e[:1000])}" for e in report["grader_errors"]]]
    lines += ["", "_Grading runs the submitted code: run it in a disposable environment._", ""]
    return "\n".join(lines)


def write_reports(report: dict[str, Any], out_dir: str | Path, executed: nbformat.NotebookNode | None = None) -> dict[str, str]:
    """Write ``<name>.grade.json``, ``<name>.grade.md`` (and the executed notebook) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(report["submission"]).stem
    paths = {"json": out / f"{stem}.grade.json", "markdown": out / f"{stem}.grade.md"}
    if executed is not None:
        paths["notebook"] = out / f"{stem}.executed.ipynb"
    report["reports"] = {k: str(v) for k, v in paths.items()}
    paths["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["markdown"].write_text(render_markdown(report), encoding="utf-8")
    if executed is not None:
        nbformat.write(executed, paths["notebook"])
    return report["reports"]


def grade(submission: str | Path, lab: str | None = None, out_dir: str | Path | None = None,
          timeout: float = DEFAULT_TIMEOUT, watch: list[str | Path] | None = None,
          keep_workdir: bool = False) -> dict[str, Any]:
    """Run ``submission`` headlessly in the smoke profile and grade it (see the module docstring).

    Args:
        submission: the notebook handed in.
        lab: ``vanilla``, ``cwgan`` or ``malaria``; default: told from the file name or ``setup_lab``.
        out_dir: where the reports go (default ``./grades``); ``None`` writes nothing else.
        timeout: seconds for the whole run, all cells and the probe together.
        watch: files and folders outside the work folder to watch, besides the sentinel folder;
            ``None`` means the submission file, the repository's ``helpers/`` and ``$GANLAB_DATA``.
        keep_workdir: keep the scratch folder (its path is in the report) instead of deleting it.

    Returns:
        The report as a dict (also written as JSON). Never raises for anything a submission does.
    """
    started = time.monotonic()
    submission = Path(submission).resolve()
    report: dict[str, Any] = {
        "submission": str(submission), "lab": lab, "profile": "smoke", "timeout_s": timeout,
        "all_passed": False, "summary": "", "problems": [], "checks": [],
        "generate": {"required": True, "status": "not run", "items": []},
        "execution": {"cells_run": 0, "code_cells": 0, "stopped": None, "errored_cells": [], "notes": []},
        "integrity": {"deleted": [], "changed": [], "added": [], "helpers_copy": [], "watched_files": 0},
        "grader_errors": [], "workdir": None, "duration_s": 0.0,
    }
    tmp = Path(tempfile.mkdtemp(prefix="ganlab-grade-"))
    executed_nb = None
    try:
        work, guard = tmp / "work", tmp / "guard"
        work.mkdir()
        _make_guard(guard)
        report["workdir"] = str(work)
        try:
            nb = nbformat.read(submission, as_version=4)
        except Exception as err:  # noqa: BLE001 - not JSON, not a notebook...
            report["problems"].append(f"unreadable notebook: {type(err).__name__}: {err}"[:500])
            raise _Stop from None
        lab = lab or infer_lab(submission, nb)
        report["lab"] = lab
        if lab not in LAB_NOTEBOOKS:
            report["problems"].append(f"cannot tell which lab this is ({lab!r}); pass --lab {'|'.join(LAB_NOTEBOOKS)}")
            raise _Stop
        report["generate"]["required"] = GENERATE_CONTRACTS[lab]["required"]

        shutil.copytree(REPO_ROOT / "helpers", work / "helpers", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for py in REPO_ROOT.glob("*.py"):
            shutil.copy2(py, work / py.name)
        shutil.copy2(submission, work / submission.name)
        names = check_names(work / "helpers" / "checks")
        expected = expected_checks(lab, names, fallback=nb)

        if watch is None:
            watch = [submission, REPO_ROOT / "helpers"]
            data = _kernel_env(work).get("GANLAB_DATA")
            if data:
                watch.append(Path(data))
        watched = [guard, *[Path(w) for w in watch if Path(w).exists()]]
        before, helpers_before = snapshot(watched), snapshot([work / "helpers"])
        report["integrity"]["watched"] = [str(w) for w in watched]

        run, origin, notes = _prepare(nb, lab)
        left = max(1.0, timeout - (time.monotonic() - started))
        info = _execute(run, work, left)
        executed_nb = run

        diff = compare_snapshots(before, snapshot(watched))
        report["integrity"].update(diff, watched_files=len(before["files"]), truncated=before["truncated"])
        helpers_diff = compare_snapshots(helpers_before, snapshot([work / "helpers"]))
        report["integrity"]["helpers_copy"] = helpers_diff["deleted"] + helpers_diff["changed"] + helpers_diff["added"]

        ex = report["execution"]
        code_positions = [p for p, c in enumerate(run.cells) if c.cell_type == "code" and origin[p] is not None]
        ex.update(code_cells=len(code_positions), cells_run=sum(p in info["executed"] for p in code_positions),
                  stopped=info["stopped"], notes=notes)
        if info.get("detail"):
            ex["detail"] = info["detail"]
        if info["stopped_cell"] is not None:
            pos = info["stopped_cell"]
            ex["stopped_cell_number"] = origin[pos] + 1 if origin[pos] is not None else "(the grader's probe)"
        for pos in code_positions:
            err = _error(run.cells[pos])
            if err:
                ex["errored_cells"].append({"cell": origin[pos] + 1, "ename": err["ename"], "evalue": err["evalue"],
                                            "todo": "##TODO##" in run.cells[pos].source})
        report["checks"] = _collect_checks(run, origin, info, expected, names)
        probe_pos = len(run.cells) - 1
        report["generate"] = _collect_probe(run.cells[probe_pos] if probe_pos in info["executed"] else None,
                                            GENERATE_CONTRACTS[lab]["required"])
    except _Stop:
        pass
    except Exception:  # noqa: BLE001 - the grader reports its own failures instead of crashing
        report["grader_errors"].append(traceback.format_exc())
    finally:
        if keep_workdir:
            report["workdir_kept"] = str(tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    try:
        report["problems"] += _problems(report)
        gen = report["generate"]
        report["all_passed"] = bool(
            report["checks"] and all(c["status"] == "passed" for c in report["checks"])
            and (gen["status"] == "passed" or not gen["required"])
            and not report["problems"] and not report["grader_errors"])
        report["summary"] = _summary(report)
    except Exception:  # noqa: BLE001
        report["grader_errors"].append(traceback.format_exc())
    report["duration_s"] = round(time.monotonic() - started, 1)
    if out_dir is not None:
        try:
            write_reports(report, out_dir, executed_nb)
        except Exception:  # noqa: BLE001 - e.g. an unwritable folder: still return the report
            report["grader_errors"].append(traceback.format_exc())
    return report


class _Stop(Exception):
    """Nothing more to run: the report already says why."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submission", help="the notebook handed in")
    parser.add_argument("--lab", choices=sorted(LAB_NOTEBOOKS), help="default: told from the file name or setup_lab(...)")
    parser.add_argument("--out", default="grades", help="folder for the reports (default: ./grades)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds for the whole run (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder for inspection")
    args = parser.parse_args(argv)
    path = Path(args.submission)
    if not path.is_file():
        parser.error(f"no file at {path}")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    lab = args.lab
    if lab is None:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 - graded (and reported) as unreadable below
            nb = None
        lab = infer_lab(path, nb)
        if lab is None and nb is not None:
            parser.error(f"cannot tell which lab {path.name} is: pass --lab {{{','.join(sorted(LAB_NOTEBOOKS))}}}")
    print(f"Grading {path} ({lab or 'unknown'} lab) in the smoke profile, time limit {args.timeout:g} s. "
          "This runs the submitted code: use a disposable environment.", flush=True)
    report = grade(path, lab=lab, out_dir=args.out, timeout=args.timeout, keep_workdir=args.keep)
    print(("ALL PASSED: " if report["all_passed"] else "NOT PASSED: ") + report["summary"])
    for key, where in report.get("reports", {}).items():
        print(f"{key}: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
