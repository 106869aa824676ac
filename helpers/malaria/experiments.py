"""A small grid runner: vary one setting at a time, train, and tabulate and plot the results.

The notebook writes ``train_one(config)``, which trains one configuration from scratch and
returns its history and a few final numbers; :func:`run_experiments` calls it for the base
configuration and for every value of every varied setting (one factor at a time, the others
at their base values), then writes

* ``<prefix>_base_losses.png`` and ``<prefix>_<factor>-<value>_losses.png``: G and D losses of
  each run, on separate axes;
* ``<prefix>_<factor>.png``: the smoothed losses of all values of one factor, over epochs;
* ``<prefix>.md`` and ``<prefix>.csv``: one row per run with its settings, metrics and time.

A run whose configuration equals the base one (the base value of a factor) is trained once
and reused. ``train_one`` is responsible for seeding, so every run starts from the same
random state; the runner itself draws no random numbers.

Example::

    results = run_experiments(train_one, cfg, {"batch_size": [16, 64], "optimizer": ["adam", "sgd"]},
                              output_dir=env.output_dir)
    print(results.table())
"""

from __future__ import annotations

import csv
import math
import os
import re
import time
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from helpers.plotting import plot_losses, save_figure, smooth

History = Mapping[str, Sequence[float]]


@dataclass
class ExperimentRun:
    """One trained configuration of the grid."""

    name: str  # "base" or "<factor>=<value>"
    factor: str  # the setting varied ("base" for the base run)
    value: Any  # its value in this run
    config: Any  # the full configuration trained
    history: dict[str, list[float]]  # per-iteration values, with "epoch_end" as from helpers.training.fit
    metrics: dict[str, float]  # final numbers returned by train_one
    seconds: float  # wall-clock time of train_one
    loss_plot: Path | None  # the run's loss figure


@dataclass
class ExperimentResults:
    """All runs of :func:`run_experiments` and the files written."""

    runs: list[ExperimentRun]
    factors: list[str]  # varied settings, in order
    metric_names: list[str]  # metric columns, in order
    files: list[Path]  # figures and tables written

    def rows(self) -> list[dict[str, Any]]:
        """One dict per run: ``run``, the varied settings, the metrics and ``seconds``."""
        out = []
        for run in self.runs:
            row: dict[str, Any] = {"run": run.name}
            row.update({f: getattr(run.config, f) for f in self.factors})
            row.update({m: run.metrics.get(m, math.nan) for m in self.metric_names})
            row["seconds"] = run.seconds
            out.append(row)
        return out

    def table(self) -> str:
        """The results as a Markdown table (numbers to 4 significant digits)."""
        rows = self.rows()
        if not rows:
            return "(no runs)"
        cols = list(rows[0])
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
        return "\n".join(lines)

    def run(self, name: str) -> ExperimentRun:
        """The run called ``name`` (``"base"`` or ``"<factor>=<value>"``)."""
        for r in self.runs:
            if r.name == name:
                return r
        raise KeyError(f"No run {name!r}; runs: {', '.join(r.name for r in self.runs)}.")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", str(value)).strip("_") or "value"


def _epoch_axis(history: History, n: int) -> np.ndarray:
    """Fractional epoch of each of ``n`` iterations, from ``epoch_end`` (iterations when absent)."""
    ends = list(history.get("epoch_end", []))
    if not ends or ends[-1] != n:
        return np.arange(1, n + 1, dtype=np.float64)
    x = np.empty(n)
    start = 0
    for e, end in enumerate(ends):
        count = end - start
        x[start:end] = e + (np.arange(1, count + 1) / max(count, 1))
        start = end
    return x


def plot_factor(runs: Sequence[ExperimentRun], factor: str, loss_keys: Sequence[str],
                path: str | os.PathLike | None = None, window: int = 20) -> plt.Figure:
    """Smoothed losses of the runs of one factor, one axis per loss, over (fractional) epochs."""
    fig, axes = plt.subplots(1, len(loss_keys), figsize=(5.2 * len(loss_keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], loss_keys):
        for run in runs:
            vals = run.history.get(key, [])
            if len(vals):
                ax.plot(_epoch_axis(run.history, len(vals)), smooth(vals, window), lw=1.5,
                        label=f"{factor} = {run.value}")
        ax.set_title(f"{key} for different {factor}")
        ax.set_xlabel("epoch" if all(r.history.get("epoch_end") for r in runs) else "iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def run_experiments(
    train_one: Callable[[Any], Mapping[str, Any]],
    base_config: Any,
    variations: Mapping[str, Sequence[Any]],
    output_dir: str | os.PathLike | None,
    metric_names: Sequence[str] | None = None,
    loss_keys: Sequence[str] = ("loss_G", "loss_D"),
    prefix: str = "experiment",
    show: Callable[[plt.Figure], None] | None = None,
) -> ExperimentResults:
    """Train the base configuration and each one-setting variation of it; tabulate and plot.

    Args:
        train_one: ``train_one(config) -> {"history": {...}, "metrics": {...}}``; trains one
            configuration from scratch (seeding itself) and returns the per-iteration history
            (as :func:`helpers.training.fit` returns it) and final numbers for the table.
        base_config: a dataclass instance; variations are made with ``dataclasses.replace``.
        variations: ``{field name: [values]}``; every field must exist in ``base_config``.
        output_dir: folder for the figures and tables; ``None`` writes nothing.
        metric_names: metric columns of the table, in order (default: the keys of the first
            run's metrics).
        loss_keys: history keys drawn in the loss figures (G first, then D).
        prefix: start of every file name.
        show: called with each factor's comparison figure (e.g. ``helpers.plotting.show``);
            figures not shown are closed.

    Returns:
        The runs (base first, then each factor's values in order, the base value reusing the
        base run) and the files written.
    """
    if not is_dataclass(base_config) or isinstance(base_config, type):
        raise TypeError("base_config must be a dataclass instance (the notebook's Config).")
    known = {f.name for f in fields(base_config)}
    unknown = [k for k in variations if k not in known]
    if unknown:
        raise ValueError(f"Unknown setting(s) {unknown} to vary; the config has: {', '.join(sorted(known))}.")
    out_dir = Path(output_dir) if output_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)  # before the first run's loss plot is saved
    files: list[Path] = []

    def train(name: str, factor: str, value: Any, config: Any) -> ExperimentRun:
        print(f"--- {name}")
        started = time.perf_counter()
        result = train_one(config)
        seconds = time.perf_counter() - started
        if not isinstance(result, Mapping) or "history" not in result or "metrics" not in result:
            raise TypeError("train_one must return a dict with 'history' and 'metrics'.")
        history = {k: list(v) for k, v in result["history"].items()}
        plot_path = None
        if out_dir is not None:
            stem = "base" if factor == "base" else f"{_slug(factor)}-{_slug(value)}"
            plot_path = out_dir / f"{prefix}_{stem}_losses.png"
            fig = plot_losses(history, window=20, g_key=loss_keys[0], d_key=loss_keys[-1])
            fig.suptitle(name, y=1.02)
            save_figure(fig, plot_path)
            plt.close(fig)
            files.append(plot_path)
        return ExperimentRun(name, factor, value, config, history, dict(result["metrics"]), seconds, plot_path)

    base = train("base", "base", "-", base_config)
    runs = [base]
    for factor, values in variations.items():
        factor_runs = []
        for value in values:
            if getattr(base_config, factor) == value:
                factor_runs.append(replace(base, name=f"{factor}={value}", factor=factor, value=value))
                continue
            run = train(f"{factor}={value}", factor, value, replace(base_config, **{factor: value}))
            runs.append(run)
            factor_runs.append(run)
        fig = plot_factor(factor_runs, factor, loss_keys,
                          path=out_dir / f"{prefix}_{_slug(factor)}.png" if out_dir is not None else None)
        if out_dir is not None:
            files.append(out_dir / f"{prefix}_{_slug(factor)}.png")
        if show is not None:
            show(fig)
        else:
            plt.close(fig)
    names = list(metric_names) if metric_names is not None else list(base.metrics)
    results = ExperimentResults(runs, list(variations), names, files)
    if out_dir is not None:
        (out_dir / f"{prefix}.md").write_text(results.table() + "\n")
        with open(out_dir / f"{prefix}.csv", "w", newline="") as f:
            rows = results.rows()
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        files += [out_dir / f"{prefix}.md", out_dir / f"{prefix}.csv"]
    return results
