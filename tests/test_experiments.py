"""helpers.malaria.experiments: one-factor-at-a-time grid, reuse of the base run, table and figures."""

from __future__ import annotations

import csv
from dataclasses import dataclass

import pytest

from helpers.malaria.experiments import run_experiments


@dataclass
class Cfg:
    batch_size: int = 32
    num_epochs: int = 2
    optimizer: str = "adam"


def fake_train(calls):
    def train_one(cfg: Cfg) -> dict:
        calls.append(cfg)
        n = cfg.num_epochs * (64 // cfg.batch_size)
        history = {"loss_G": [1.0 / (i + 1) for i in range(n)], "loss_D": [0.5] * n,
                   "epoch_end": [(e + 1) * (64 // cfg.batch_size) for e in range(cfg.num_epochs)]}
        return {"history": history, "metrics": {"final loss_G": history["loss_G"][-1], "iterations": float(n)}}
    return train_one


def test_grid_runs_each_configuration_once_and_writes_files(tmp_path):
    calls = []
    results = run_experiments(fake_train(calls), Cfg(), {"batch_size": [16, 32], "optimizer": ["adam", "sgd"]},
                              output_dir=tmp_path)
    # base, batch 16, sgd: the base values (32, adam) reuse the base run
    assert calls == [Cfg(), Cfg(batch_size=16), Cfg(optimizer="sgd")]
    assert [r.name for r in results.runs] == ["base", "batch_size=16", "optimizer=sgd"]
    assert results.run("batch_size=16").metrics["iterations"] == 8.0
    table = results.table().splitlines()
    assert table[0] == "| run | batch_size | optimizer | final loss_G | iterations | seconds |"
    assert table[3].startswith("| batch_size=16 | 16 | adam | 0.125 | 8 |")
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"experiment_base_losses.png", "experiment_batch_size-16_losses.png",
                     "experiment_optimizer-sgd_losses.png", "experiment_batch_size.png", "experiment_optimizer.png",
                     "experiment.md", "experiment.csv"}
    rows = list(csv.DictReader(open(tmp_path / "experiment.csv")))
    assert [r["run"] for r in rows] == ["base", "batch_size=16", "optimizer=sgd"] and rows[2]["optimizer"] == "sgd"
    with pytest.raises(KeyError, match="No run"):
        results.run("lr=1")


def test_grid_errors():
    with pytest.raises(ValueError, match="Unknown setting"):
        run_experiments(fake_train([]), Cfg(), {"lr": [0.1]}, output_dir=None)
    with pytest.raises(TypeError, match="dataclass instance"):
        run_experiments(fake_train([]), {"batch_size": 1}, {}, output_dir=None)
    with pytest.raises(TypeError, match="'history' and 'metrics'"):
        run_experiments(lambda cfg: {"loss": 1}, Cfg(), {}, output_dir=None)
