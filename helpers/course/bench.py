"""Benchmark: train each lab in a chosen profile and report speed and quality.

    python -m helpers.course.bench --profile full --labs vanilla cwgan
    python -m helpers.course.bench --profile smoke --labs vanilla --out /tmp/bench     # what the tests run

Each lab notebook is executed top to bottom in a fresh kernel (the same code students run, no
copy of it here), then a probe cell appended to it measures the trained generator with the
project's own classifiers (``helpers.metrics``) and checks ``generate`` with the one contract
(``helpers.course.probe``, a module the kernel imports). Writes ``bench_<profile>_<device>.json`` and a
Markdown table beside it, and prints the table. Every figure carries the device, the software
versions and the command that produced it.

Targets reported against (issue 7): vanilla on a GPU, >= 90% of generated digits classified with
confidence >= 0.9 and every digit between 5% and 15% of samples; cWGAN-GP, >= 95% conditional
accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import torch

from helpers.env import PROFILES, pick_device
from helpers.course.labs import LABS, lab_named
from helpers.course.probe import BENCH_MARK
from helpers.course.run_notebook import REPO_ROOT, execute_notebook

BENCH_LABS = [lab.name for lab in LABS if lab.bench]
# Per-epoch metric and threshold that define "reached the quality target".
TARGETS = {"vanilla": ("recognised", 0.90), "cwgan": ("conditional_accuracy", 0.95)}


def environment() -> dict:
    """Device and software versions, recorded with every result."""
    device = pick_device(verbose=False)
    info = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import torchvision

        info["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover - torchvision is a requirement
        pass
    return info


def _parse_probe(nb) -> dict:
    for cell in reversed(nb.cells):
        for out in cell.get("outputs", []):
            m = re.search(re.escape(BENCH_MARK) + r"(.*)", out.get("text", ""))
            if m:
                return json.loads(m.group(1))
    raise RuntimeError("the benchmark probe printed no result")


def summarise(lab: str, raw: dict, wall_seconds: float) -> dict:
    """Speed, time to target and final quality from one lab's probe output."""
    seconds = raw["epoch_seconds"]
    steps = [b - a for a, b in zip([0] + raw["epoch_end"][:-1], raw["epoch_end"])]
    train_seconds = float(sum(seconds))
    images = sum(steps) * raw["images_per_step"]
    key, threshold = TARGETS[lab]
    per_epoch = raw["per_epoch"].get(key, [])
    reached = next((i for i, v in enumerate(per_epoch) if v >= threshold), None)
    m = raw["metrics"]
    out = {
        "lab": lab,
        "epochs": len(seconds),
        "train_seconds": round(train_seconds, 1),
        "notebook_wall_seconds": round(wall_seconds, 1),
        "train_images_per_second": round(images / train_seconds, 1) if train_seconds > 0 else None,
        "target": f"{key} >= {threshold}",
        "seconds_to_target": round(sum(seconds[: reached + 1]), 1) if reached is not None else None,
        "per_epoch_" + key: [round(v, 4) for v in per_epoch],
        "metrics": m,
        "config": raw["config"],
        "generate_contract": raw["contract"]["status"],
    }
    if lab == "vanilla":
        hist = m["class_histogram"]
        out["meets_target"] = bool(m["confident_fraction"] >= 0.90 and min(hist) >= 0.05 and max(hist) <= 0.15)
    else:
        out["meets_target"] = bool(m["conditional_accuracy"] >= 0.95)
    return out


def run_lab(lab: str, profile: str, workdir: Path, timeout: int, keep: Path | None = None) -> dict:
    """Execute one lab notebook in ``profile`` with fresh checkpoint/output folders and measure it.

    ``keep``: a folder to write the executed notebook to (``<lab>_<profile>.ipynb``), to look at
    its figures afterwards.
    """
    env = {
        "GANLAB_CHECKPOINTS": str(workdir / "checkpoints"),  # fresh: a benchmark never resumes
        "GANLAB_OUTPUT": str(workdir / "outputs"),
    }
    started = time.perf_counter()
    probe = f"from helpers.course.probe import print_bench_result\nprint_bench_result(globals(), {lab!r})"
    nb = execute_notebook(lab_named(lab).notebook_path(), profile, timeout=timeout, extra_cells=[probe], env=env)
    elapsed = time.perf_counter() - started
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, keep / f"{lab}_{profile}.ipynb")
    return summarise(lab, _parse_probe(nb), elapsed)


def to_markdown(report: dict) -> str:
    e = report["environment"]
    lines = [
        f"# Benchmark: profile `{report['profile']}` on {e['device']} ({e['device_name']})",
        "",
        f"torch {e['torch']}, torchvision {e.get('torchvision', '?')}, Python {e['python']}, "
        f"{e['cpu_count']} CPUs ({e['torch_threads']} torch threads), {e['platform']}, {e['date']}.",
        f"Command: `{report['command']}`",
        "",
        "| lab | epochs | train s | images/s | target | s to target | key metrics | real-data floor | meets target | generate contract |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        m = r["metrics"]
        f = m["real_floor"]
        if r["lab"] == "vanilla":
            key = (f"confident {m['confident_fraction']:.1%}, digits {min(m['class_histogram']):.1%}–"
                   f"{max(m['class_histogram']):.1%}, KL {m['kl_from_uniform']:.3f}, FD {m['frechet_distance']:.2f}")
            floor = f"confident {f['confident_fraction']:.1%}, KL {f['kl_from_uniform']:.3f}, FD {f['frechet_distance']:.2f}"
        else:
            key = f"cond. acc. {m['conditional_accuracy']:.1%}, FD {m['frechet_distance']:.2f}"
            floor = f"cond. acc. {f['conditional_accuracy']:.1%}, FD {f['frechet_distance']:.2f}"
        lines.append(f"| {r['lab']} | {r['epochs']} | {r['train_seconds']} | {r['train_images_per_second']} | "
                     f"{r['target']} | {r['seconds_to_target'] if r['seconds_to_target'] is not None else 'not reached'} | "
                     f"{key} | {floor} | {'yes' if r['meets_target'] else 'no'} | {r['generate_contract']} |")
    lines += ["", "FD: Fréchet distance on the project classifier's penultimate features (not Inception FID)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="full", choices=PROFILES)
    parser.add_argument("--labs", nargs="+", default=BENCH_LABS, choices=BENCH_LABS)
    parser.add_argument("--out", default=str(REPO_ROOT / "results"), help="folder for the JSON and Markdown report")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds allowed per notebook cell")
    parser.add_argument("--notebooks", default=None,
                        help="also write the executed notebooks to this folder (to inspect their figures)")
    args = parser.parse_args(argv)

    command = "python -m helpers.course.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    report = {"profile": args.profile, "command": command.strip(), "environment": environment(), "results": []}
    with tempfile.TemporaryDirectory(prefix="ganlab-bench-") as tmp:
        for lab in args.labs:
            print(f"[bench] {lab}: running {lab_named(lab).notebook} in the {args.profile} profile ...", flush=True)
            report["results"].append(run_lab(lab, args.profile, Path(tmp) / lab, args.timeout,
                                              Path(args.notebooks) if args.notebooks else None))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bench_{args.profile}_{report['environment']['device']}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    md = to_markdown(report)
    (out / f"{stem}.md").write_text(md)
    print(md)
    print(f"Written: {out / (stem + '.json')} and {out / (stem + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
