"""Speed of the vanilla lab's training step on this machine: threads, channels_last, torch.compile, batch size.

    python -m helpers.course.speed                       # the quick profile's networks (G 16, D 32, batches of 128)
    python -m helpers.course.speed --g-width 32 --d-width 64 --batch 64 --out results   # the full profile's

Every variant runs the notebook's own ``train_step`` (one D step, one G step) on its own ``Generator`` and
``Discriminator`` with Adam (all loaded from ``lab8_vanilla.ipynb`` with
:func:`helpers.course.notebook_code.load_definitions`). Variants are timed in turns (round 1 of every variant, then
round 2, ...) so that other load on the machine spreads over all of them, and each figure is the median
over the rounds. A compiled variant's first steps (the compilation) are reported apart as its warm-up.
Evaluation (sampling 5,000 digits and classifying them) is timed under ``torch.no_grad`` and
``torch.inference_mode``. Writes ``speed_<device>.md`` and ``.json`` with the device, the versions, the
command and the load average.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from helpers.course.bench import environment, load_average
from helpers.course.notebook_code import load_definitions
from helpers.course.run_notebook import REPO_ROOT


@dataclass
class Variant:
    """One way to run the training step."""

    name: str
    threads: int
    batch: int
    channels_last: bool = False
    compiled: bool = False


def _variants(batch: int, threads: int) -> list[Variant]:
    one = max(1, threads // 2)
    return [
        Variant(f"eager, {threads} threads, batch {batch} (the notebook)", threads, batch),
        Variant(f"eager, {one} thread{'s' if one > 1 else ''}", one, batch),
        Variant("channels_last", threads, batch, channels_last=True),
        Variant("torch.compile (inductor)", threads, batch, compiled=True),
        Variant(f"batch {batch // 2}", threads, batch // 2),
        Variant(f"batch {batch * 2}", threads, batch * 2),
    ]


class StepRunner:
    """The notebook's own ``train_step`` on fresh networks, set up as ``variant`` says.

    ``train_step`` reads ``G``, ``D``, ``opt_G``, ``opt_D``, ``cfg`` and ``device`` from the notebook's globals:
    each runner puts its own there before it steps (no copy of the step's code here).
    """

    def __init__(self, nb: Any, variant: Variant, g_width: int, d_width: int, latent_dim: int = 100) -> None:
        torch.manual_seed(0)
        self.nb, self.variant = nb, variant
        fmt = torch.channels_last if variant.channels_last else torch.contiguous_format
        self.cfg = nb.Config(latent_dim=latent_dim, g_width=g_width, d_width=d_width, batch_size=variant.batch)
        self.G = nb.Generator(latent_dim, g_width).to(memory_format=fmt)
        self.D = nb.Discriminator(d_width).to(memory_format=fmt)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=2e-3, betas=(0.5, 0.99))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=2e-3, betas=(0.5, 0.99))
        self.G_run = torch.compile(self.G) if variant.compiled else self.G
        self.D_run = torch.compile(self.D) if variant.compiled else self.D
        self.x_real = (torch.rand(variant.batch, 1, 28, 28) * 2 - 1).contiguous(memory_format=fmt)

    def step(self) -> None:
        self.nb.G, self.nb.D, self.nb.opt_G, self.nb.opt_D = self.G_run, self.D_run, self.opt_G, self.opt_D
        self.nb.cfg, self.nb.device = self.cfg, torch.device("cpu")
        self.nb.train_step(self.x_real)


def _timed(fn: Callable[[], None], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - started


def measure_steps(nb: Any, variants: list[Variant], g_width: int, d_width: int, steps: int, rounds: int,
                  warmup: int = 3) -> list[dict]:
    """Images per second of each variant: the median over ``rounds`` of ``steps`` timed steps, taken in turns."""
    runners, warm = [], []
    for v in variants:
        torch.set_num_threads(v.threads)
        runner = StepRunner(nb, v, g_width, d_width)
        warm.append(_timed(runner.step, warmup))  # compilation happens here
        runners.append(runner)
    times: list[list[float]] = [[] for _ in variants]
    for _ in range(rounds):
        for i, (v, runner) in enumerate(zip(variants, runners)):
            torch.set_num_threads(v.threads)
            times[i].append(_timed(runner.step, steps) / steps)
    out = []
    for v, t, w in zip(variants, times, warm):
        per_step = statistics.median(t)
        out.append({"variant": v.name, "threads": v.threads, "batch": v.batch, "channels_last": v.channels_last,
                    "compiled": v.compiled, "step_ms": round(per_step * 1e3, 2),
                    "images_per_second": round(v.batch / per_step, 1), "warmup_seconds": round(w, 2),
                    "step_ms_rounds": [round(x * 1e3, 2) for x in t]})
    return out


def measure_evaluation(nb: Any, g_width: int, threads: int, n: int = 5000, rounds: int = 3) -> list[dict]:
    """Seconds to sample ``n`` digits and classify them, under ``no_grad`` and under ``inference_mode``."""
    from helpers.classifiers import classify, load_classifier

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    G = nb.Generator(100, g_width).eval()
    judge = load_classifier("mnist")
    z = torch.randn(n, 100)

    def run(ctx: Callable[[], Any]) -> Callable[[], None]:
        def go() -> None:
            with ctx():
                classify(judge, G(z))
        return go

    modes = {"torch.no_grad": torch.no_grad, "torch.inference_mode": torch.inference_mode}
    times: dict[str, list[float]] = {k: [] for k in modes}
    for k, ctx in modes.items():
        run(ctx)()  # warm-up
    for _ in range(rounds):
        for k, ctx in modes.items():
            times[k].append(_timed(run(ctx), 1))
    return [{"mode": k, "seconds": round(statistics.median(v), 3), "rounds": [round(x, 3) for x in v]}
            for k, v in times.items()]


def to_markdown(report: dict) -> str:
    e = report["environment"]
    base = report["steps"][0]["images_per_second"]
    lines = [f"# Training-step speed of the vanilla lab on {e['device']} ({e['device_name']})", "",
             f"torch {e['torch']}, Python {e['python']}, {e['cpu_count']} CPUs, {e['platform']}, {e['date']}.",
             f"Command: `{report['command']}`",
             f"Load average (1/5/15 min): {report['load_average']['start']} at the start, "
             f"{report['load_average']['end']} at the end.", "",
             f"G width {report['g_width']}, D width {report['d_width']}; median of {report['rounds']} rounds of "
             f"{report['steps_per_round']} steps, the variants timed in turns.", "",
             "| variant | step (ms) | images/s | vs the notebook | first 3 steps (s) |", "|---|---|---|---|---|"]
    for r in report["steps"]:
        lines.append(f"| {r['variant']} | {r['step_ms']} | {r['images_per_second']} | "
                     f"{r['images_per_second'] / base:.2f}x | {r['warmup_seconds']} |")
    lines += ["", "Sampling and classifying 5,000 digits:", "", "| mode | seconds |", "|---|---|"]
    lines += [f"| {r['mode']} | {r['seconds']} |" for r in report["evaluation"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--g-width", type=int, default=16)
    parser.add_argument("--d-width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--steps", type=int, default=30, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=None, help="folder for speed_<device>.md/.json (default: print only)")
    args = parser.parse_args(argv)
    command = "python -m helpers.course.speed " + " ".join(argv if argv is not None else sys.argv[1:])
    nb = load_definitions(REPO_ROOT / "lab8_vanilla.ipynb")
    report: dict[str, Any] = {"command": command.strip(), "environment": environment(), "g_width": args.g_width,
                              "d_width": args.d_width, "rounds": args.rounds, "steps_per_round": args.steps,
                              "load_average": {"start": load_average()}}
    report["steps"] = measure_steps(nb, _variants(args.batch, args.threads), args.g_width, args.d_width,
                                    args.steps, args.rounds)
    report["evaluation"] = measure_evaluation(nb, args.g_width, args.threads)
    torch.set_num_threads(args.threads)
    report["load_average"]["end"] = load_average()
    md = to_markdown(report)
    print(md)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = f"speed_{report['environment']['device']}_g{args.g_width}_d{args.d_width}_b{args.batch}"
        (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / f"{stem}.md").write_text(md)
        print(f"Written: {out / stem}.json, .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
