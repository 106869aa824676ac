"""The grader's own process: run a submission's code, then call the lab's checks on its objects.

    python -m helpers.course.grade_runner        # started by helpers.course.grade; reads its job on stdin

Nothing a notebook prints is evidence here. In order:

1. The job (one JSON line on stdin: lab, submission, cell sources, hidden tests, the folder for the
   results and a random nonce) is read before any submitted code runs; stdin is then closed. The
   nonce names the results file and is never in argv or the environment.
2. ``torch``, ``numpy`` and every ``helpers`` module the lab uses are imported, and the grader
   keeps what it will call: the lab's registered checks (``GRADED`` in ``helpers/checks/<lab>.py``),
   the contract checker, ``copy_share``. :class:`Pristine` records every loaded ``helpers`` module's
   names, the code of their functions and the attributes of their classes, and the same for
   ``builtins``, ``numpy``, ``json``, ``os`` and this module.
3. The submission's code cells run in order in one namespace (``%``/``!`` lines dropped, the
   ``smoke`` profile pinned), each in its own try/except; errors are recorded per cell.
4. Everything recorded in step 2 is put back; what differed is reported as tampering.
5. The grader calls, itself, every registered check on the submission's objects, then the hidden
   tests of the lab's solution notebook (with the check functions of step 2 in their namespace),
   then the ``generate`` contract with the copy test. Before each call the modules are put back
   again and caches cleared; a change made during a call is tampering too.
6. The results (one record per cell, check, hidden test and contract requirement) are written as
   JSON to ``results-<nonce>.json``.

This stops a submission from printing pass lines or replacing the checks. It is not a sandbox:
code that patches torch itself, reads this process's memory or writes the results file in its
place is beyond it (README: run grading in a disposable environment).
"""

from __future__ import annotations

import builtins
import importlib
import json
import os
import pkgutil
import posixpath
import sys
import textwrap
import threading
import time
import traceback
import types
from typing import Any

import numpy as np
import torch

import helpers
from helpers.checks.common import CheckFailed
from helpers.checks.contract import contract_items
from helpers.checks.graded import Defined

PROGRESS_NAME = "progress.jsonl"  # which cell runs now (diagnostics for a hang or a crash; never evidence)
# After the parameters cell: the smoke profile, no time budget (a budget would train smoke epochs until the
# time limit) and the default checkpoint folder (inside the scratch folder; a CHECKPOINT_DIR elsewhere would
# count as touching files outside it).
SMOKE_CELL = 'PROFILE = "smoke"; BUDGET_MIN = None; CHECKPOINT_DIR = None  # injected by helpers.course.grade'
_IGNORED_NEW_NAMES = ("__warningregistry__", "_")


# ----------------------------------------------------------------------------- what must not change
def _import_helpers() -> list[str]:
    """Import every helpers module except command entry points; return the ones that failed."""
    failed = []
    for info in pkgutil.walk_packages(helpers.__path__, "helpers."):
        last = info.name.rsplit(".", 1)[-1]
        if last == "__main__" or info.name.startswith("helpers.course.") and info.name not in (
                "helpers.course.labs", "helpers.course.scoring", "helpers.course.notebook_code"):
            continue
        try:
            importlib.import_module(info.name)
        except Exception as err:  # noqa: BLE001 - reported; the checks of the lab may still work
            failed.append(f"{info.name}: {type(err).__name__}: {err}")
    return failed


class Pristine:
    """The state of the modules the grader relies on, taken before the submission runs."""

    def __init__(self, modules: list[types.ModuleType]) -> None:
        self.modules = modules
        self.names = {m.__name__: dict(vars(m)) for m in modules}
        self.code: dict[tuple[str, str], tuple] = {}
        self.classes: dict[tuple[str, str], tuple[type, dict]] = {}
        for m in modules:
            for key, value in vars(m).items():
                if isinstance(value, types.FunctionType):
                    self.code[(m.__name__, key)] = self._function_state(value)
                elif isinstance(value, type) and value.__module__ == m.__name__:
                    self.classes[(m.__name__, key)] = (value, dict(vars(value)))
                    for attr, member in vars(value).items():
                        if isinstance(member, types.FunctionType):
                            self.code[(m.__name__, f"{key}.{attr}")] = self._function_state(member)
        self.retake_containers()
        self.sys_modules = {name: mod for name, mod in sys.modules.items() if name.split(".")[0] == "helpers"}
        self.trace = (sys.gettrace(), sys.getprofile())

    def retake_containers(self) -> None:
        """Record the contents of the module-level dicts, lists and sets of helpers (tables, caches)."""
        self.containers = {}
        for m in self.modules:
            if m.__name__.split(".")[0] == "helpers":
                for key, value in vars(m).items():
                    if type(value) in (dict, list, set):
                        self.containers[(m.__name__, key)] = (value, value.copy())

    @staticmethod
    def _same_contents(now: Any, saved: Any) -> bool:
        if isinstance(now, dict):
            return now.keys() == saved.keys() and all(now[k] is saved[k] for k in now)
        if isinstance(now, list):
            return len(now) == len(saved) and all(a is b for a, b in zip(now, saved))
        return now == saved

    @staticmethod
    def _function_state(f: types.FunctionType) -> tuple:
        return f, f.__code__, f.__defaults__, f.__kwdefaults__, dict(f.__dict__)

    def restore(self) -> list[str]:
        """Put everything back; return what had changed (empty when nothing did)."""
        changed: list[str] = []
        sys.settrace(self.trace[0])
        sys.setprofile(self.trace[1])
        threading.settrace(None)
        for name, module in self.sys_modules.items():
            if sys.modules.get(name) is not module:
                changed.append(f"sys.modules[{name!r}] was replaced")
                sys.modules[name] = module
        for module in self.modules:
            saved, now = self.names[module.__name__], vars(module)
            for key in list(now):
                if key in saved:
                    continue
                value = now[key]
                if key in _IGNORED_NEW_NAMES or (isinstance(value, types.ModuleType)
                                                 and value.__name__ == f"{module.__name__}.{key}"):
                    continue  # a warning registry, or a submodule imported for the first time
                changed.append(f"{module.__name__}.{key} was added")
                del now[key]
            for key, value in saved.items():
                if key not in now or now[key] is not value:
                    changed.append(f"{module.__name__}.{key} was {'deleted' if key not in now else 'replaced'}")
                    now[key] = value
        for (module_name, cls_name), (cls, saved) in self.classes.items():
            now = dict(vars(cls))
            for attr in set(now) - set(saved) - {"__slotnames__"}:  # copyreg caches __slotnames__ when copying
                changed.append(f"{module_name}.{cls_name}.{attr} was added")
                delattr(cls, attr)
            for attr, value in saved.items():
                if attr not in now or now[attr] is not value:
                    changed.append(f"{module_name}.{cls_name}.{attr} was replaced")
                    setattr(cls, attr, value)
        for (module_name, name), (f, code, defaults, kwdefaults, attrs) in self.code.items():
            if f.__code__ is not code or f.__defaults__ != defaults or f.__kwdefaults__ != kwdefaults:
                changed.append(f"the code or defaults of {module_name}.{name} were changed")
                f.__code__, f.__defaults__, f.__kwdefaults__ = code, defaults, kwdefaults
            if set(f.__dict__) - {"__wrapped__"} != set(attrs) - {"__wrapped__"}:
                changed.append(f"the attributes of {module_name}.{name} were changed")
                f.__dict__.clear()
                f.__dict__.update(attrs)
        for (module_name, key), (value, saved) in self.containers.items():
            if not self._same_contents(value, saved):
                changed.append(f"the contents of {module_name}.{key} were changed")
                value.clear()
                value.update(saved) if isinstance(value, (dict, set)) else value.extend(saved)
        for module in self.modules:
            if module.__name__.split(".")[0] == "helpers":
                for value in vars(module).values():
                    if callable(getattr(value, "cache_clear", None)):
                        value.cache_clear()  # cached answers or classifiers a submission may have altered
        return changed


# ----------------------------------------------------------------------------- running the submission
def strip_magics(source: str) -> str:
    """A cell's source without IPython magics and shell lines (``%...``, ``!...``)."""
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


def _progress(path: str, _open=open, _dumps=json.dumps, **record: Any) -> None:
    """Append one line to the progress file (the functions are bound before any submitted code runs)."""
    try:
        with _open(path, "a", encoding="utf-8") as f:
            f.write(_dumps(record) + "\n")
    except Exception:  # noqa: BLE001 - diagnostics only: a submission that broke open() is caught later
        pass


def run_cells(cells: list[dict], names: dict, progress: str, workdir: str) -> list[dict]:
    """Run each cell in ``names``; one record per cell: ``{"cell", "status", "ename", "evalue", "todo"}``."""
    records = []
    for cell in cells:
        _progress(progress, phase="cell", cell=cell["cell"], time=time.time())
        record: dict[str, Any] = {"cell": cell["cell"], "status": "ok", "injected": cell.get("injected", False)}
        try:
            exec(compile(strip_magics(cell["source"]), f"<cell {cell['cell']}>", "exec"), names)  # noqa: S102
        except BaseException as err:  # noqa: BLE001 - SystemExit and KeyboardInterrupt from a cell are results too
            record.update(status="error", ename=type(err).__name__, evalue=str(err)[:1000],
                          todo="##TODO##" in cell["source"])
        records.append(record)
        try:
            os.chdir(workdir)  # a cell may have changed folder; the next one starts where the notebook does
        except OSError:
            pass
    return records


def _status(err: BaseException | None) -> tuple[str, str]:
    if err is None:
        return "passed", ""
    if isinstance(err, NotImplementedError):
        return "not implemented", f"NotImplementedError: {err}" if str(err) else "NotImplementedError: a TODO is not written yet"
    if isinstance(err, (CheckFailed, AssertionError)):
        return "failed", str(err) or type(err).__name__
    return "error", f"{type(err).__name__}: {err}"


def _call(pristine: Pristine, tampering: list[str], where: str, function, *args) -> BaseException | None:
    """Call ``function(*args)`` with the modules put back before and after; return what it raised."""
    tampering += [f"before {where}: {c}" for c in pristine.restore()]
    try:
        function(*args)
        err = None
    except BaseException as caught:  # noqa: BLE001 - the submission's objects may raise anything
        err = caught
    tampering += [f"during {where}: {c}" for c in pristine.restore()]
    return err


def grade_objects(job: dict, names: dict, pristine: Pristine, checks_module, contract, copy_share,
                  tampering: list[str], progress: str) -> dict:
    """Call the visible checks, the hidden tests and the contract on the submission's names."""
    defined = Defined(names)
    results: dict[str, Any] = {"checks": []}
    for record in checks_module.GRADED:
        _progress(progress, phase="check", check=record.id, time=time.time())
        err = _call(pristine, tampering, f"check {record.id}", record.call, defined)
        status, message = _status(err)
        results["checks"].append({"id": record.id, "title": record.title, "kind": "visible", "status": status,
                                  "message": message[:1500]})
    pristine_names = {name: getattr(checks_module, name) for name in checks_module.__all__}
    pristine_names.update(np=np, torch=torch, nn=torch.nn, F=torch.nn.functional, CheckFailed=CheckFailed)
    for test in job["hidden_tests"]:
        _progress(progress, phase="hidden", check=test["id"], time=time.time())
        scope = {**names, **pristine_names}
        code = compile(textwrap.dedent(test["source"]), f"<hidden test {test['id']}>", "exec")
        err = _call(pristine, tampering, f"hidden test {test['id']}", exec, code, scope)
        status, message = _status(err)
        if isinstance(err, NameError):
            status, message = "failed", f"the notebook does not define what the test uses: {err}"
        results["checks"].append({"id": test["id"], "title": test["title"], "kind": "hidden", "status": status,
                                  "message": message[:1500]})
    _progress(progress, phase="contract", time=time.time())
    contract_result: dict[str, Any] = {"status": "not run", "message": "", "items": []}
    box: dict[str, Any] = {}

    def check_contract() -> None:
        options = checks_module.graded_generate(defined)
        generate = options.pop("generate")
        if not callable(generate):
            raise CheckFailed(f"generate is {type(generate).__name__}, not a function.")
        box["items"] = contract_items(generate, contract, copies=contract.copies_dataset is not None,
                                      copy_share=copy_share_for_contract, **options)

    def guarded_copy_share(images: Any, dataset: str) -> dict:
        # generate ran just before: put everything back (e.g. a poisoned reference cache), then score; what
        # the scoring itself caches is the grader's own.
        tampering.extend(f"in generate, before the copy test: {c}" for c in pristine.restore())
        try:
            return copy_share(images, dataset)
        finally:
            pristine.retake_containers()

    copy_share_for_contract = guarded_copy_share if copy_share is not None else None
    err = _call(pristine, tampering, "the generate contract", check_contract)
    if err is not None:
        status, message = _status(err)
        contract_result.update(status="failed" if status == "passed" else status, message=message[:1500])
    else:
        items = box["items"]
        first_bad = next((i for i in items if not i.ok), None)
        contract_result["items"] = [i.to_dict() for i in items]
        if first_bad is None:
            contract_result["status"] = "passed"
        else:
            contract_result["status"] = "not implemented" if first_bad.status == "not implemented" else "failed"
            contract_result["message"] = f"{first_bad.message}\nHint: {first_bad.hint}"
    results["contract"] = contract_result
    return results


# ----------------------------------------------------------------------------- the process
def main() -> int:
    job = json.loads(sys.stdin.readline())
    sys.stdin.close()
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - input() in a cell gets EOF, not the job
    started = time.time()
    progress = os.path.join(job["results_dir"], PROGRESS_NAME)
    _progress(progress, phase="imports", time=started)
    results: dict[str, Any] = {"nonce": job["nonce"], "grader_errors": [], "tampering": []}
    results["grader_errors"] += [f"could not import {e}" for e in _import_helpers()]
    from helpers.course.labs import lab_named

    lab = lab_named(job["lab"])
    checks_module = lab.checks_module()
    copy_share = None
    if lab.contract.copies_dataset is not None:
        from helpers.course.scoring import copy_share
    watched = [m for name, m in sorted(sys.modules.items()) if name.split(".")[0] == "helpers" and m is not None]
    watched += [builtins, np, json, os, posixpath, sys.modules[__name__]]
    if __name__ != "__main__":
        watched.append(sys.modules["__main__"])
    pristine = Pristine(watched)
    write_results = _results_writer(job["results_dir"], job["nonce"])

    workdir = os.getcwd()
    submission = types.ModuleType("__ganlab_submission__")
    submission.__file__ = job["submission"]
    sys.modules[submission.__name__] = submission  # dataclasses look their module up here
    results["cells"] = run_cells(job["cells"], vars(submission), progress, workdir)
    tampering: list[str] = [f"in the notebook's cells: {c}" for c in pristine.restore()]
    _progress(progress, phase="checks", time=time.time())
    results.update(grade_objects(job, vars(submission), pristine, checks_module, lab.contract, copy_share,
                                 tampering, progress))
    results["tampering"] = tampering
    results["seconds"] = round(time.time() - started, 1)
    _progress(progress, phase="done", time=time.time())
    write_results(results)
    return 0


def _results_writer(folder: str, nonce: str):
    """A function writing the results file; the nonce stays in its closure."""
    path = os.path.join(folder, f"results-{nonce}.json")
    dumps, replace, opener = json.dumps, os.replace, open

    def write(results: dict) -> None:
        tmp = path + ".tmp"
        with opener(tmp, "w", encoding="utf-8") as f:
            f.write(dumps(results, default=str))
        replace(tmp, path)
    return write


if __name__ == "__main__":
    try:
        code = main()
    except BaseException:  # noqa: BLE001 - the parent reports a missing results file with this text
        traceback.print_exc()
        code = 70
    sys.stdout.flush()
    os._exit(code)
