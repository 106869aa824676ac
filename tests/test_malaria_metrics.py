"""Lab 3 measurements: multi-label metrics (by hand and against torchmetrics), patch statistics, augmentation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.classification import MultilabelAccuracy, MultilabelF1Score, MultilabelPrecision, MultilabelRecall

from helpers.malaria.data import random_dihedral
from helpers.malaria.metrics import (
    FEATURE_NAMES, checkerboard_energy, feature_frechet_distance, field_bootstrap, format_metrics_table, multilabel_metrics,
    patch_features, plot_epoch_curves, plot_prediction_gallery, stage_names,
)

LOGIT = 3.0  # sigmoid(3) = 0.95: a confident "yes"


def _logits(pred: list[list[int]]) -> torch.Tensor:
    return (torch.tensor(pred, dtype=torch.float32) * 2 - 1) * LOGIT


def test_multilabel_metrics_by_hand():
    targets = torch.tensor([[1, 0, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=torch.float32)
    pred = [[1, 0, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]]
    m = multilabel_metrics(_logits(pred), targets)
    # ring: TP 1 (patch 0), FN 1 (patch 1), FP 1 (patch 2) -> P 1/2, R 1/2, F1 1/2, accuracy 2/4
    assert (m["ring/precision"], m["ring/recall"], m["ring/f1"], m["ring/accuracy"]) == (0.5, 0.5, 0.5, 0.5)
    # trophozoite: one positive, never predicted -> precision undefined, recall 0, F1 0
    assert math.isnan(m["trophozoite/precision"]) and m["trophozoite/recall"] == 0 and m["trophozoite/f1"] == 0
    # schizont: no positive and none predicted -> everything but accuracy undefined
    assert all(math.isnan(m[f"schizont/{k}"]) for k in ("precision", "recall", "f1")) and m["schizont/accuracy"] == 1
    assert m["gametocyte/f1"] == 1 and m["gametocyte/support"] == 1
    # pooled: TP 2, FP 1, FN 2 over 16 decisions, 3 wrong
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 4)
    assert m["f1"] == pytest.approx(4 / 7) and m["accuracy"] == pytest.approx(13 / 16)
    assert m["exact_match"] == pytest.approx(1 / 4)  # only patch 0 is fully right
    # the loss is the mean BCE over all 16 entries
    p = 1 / (1 + math.exp(-LOGIT))
    assert m["loss"] == pytest.approx(-(13 * math.log(p) + 3 * math.log(1 - p)) / 16, rel=1e-5)


def test_macro_f1_and_thresholds_per_stage():
    targets = torch.tensor([[1, 0, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=torch.float32)
    pred = [[1, 0, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]]
    m = multilabel_metrics(_logits(pred), targets)
    # F1 ring 1/2, trophozoite 0, schizont undefined (left out), gametocyte 1 -> (0.5 + 0 + 1) / 3
    assert m["macro_f1"] == pytest.approx(1.5 / 3)
    assert math.isnan(multilabel_metrics(_logits([[0, 0, 0, 0]]), torch.zeros(1, 4))["macro_f1"])
    # One threshold per stage: probability 0.95 for "yes", 0.05 for "no"; a threshold of 0.99 on ring
    # turns its two predicted rings into misses (ring F1 0), the others are unchanged.
    m = multilabel_metrics(_logits(pred), targets, threshold=torch.tensor([0.99, 0.5, 0.5, 0.5]))
    assert m["ring/recall"] == 0 and math.isnan(m["ring/precision"]) and m["gametocyte/f1"] == 1
    assert m["macro_f1"] == pytest.approx(1 / 3)


def test_field_bootstrap_draws_whole_fields():
    field = torch.tensor([0, 0, 0, 1, 2, 2])
    draws = field_bootstrap(field, num_samples=200, seed=3)
    assert len(draws) == 200
    sizes = set()
    for idx in draws:
        drawn = field[idx]
        for f in drawn.unique().tolist():  # every drawn field comes with all its patches, once per draw
            assert int((drawn == f).sum()) % int((field == f).sum()) == 0
        n_fields = sum(int((drawn == f).sum()) // int((field == f).sum()) for f in drawn.unique().tolist())
        assert n_fields == 3  # as many fields as there are, with replacement
        sizes.add(len(idx))
    assert len(sizes) > 1  # resamples differ (fields of different sizes)
    assert all(torch.equal(a, b) for a, b in zip(draws, field_bootstrap(field, num_samples=200, seed=3)))


def test_multilabel_metrics_against_torchmetrics():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 4, generator=gen) * 2
    targets = (torch.rand(50, 4, generator=gen) < 0.4).float()
    m = multilabel_metrics(logits, targets)
    probs, y = torch.sigmoid(logits), targets.int()
    for cls, key in ((MultilabelPrecision, "precision"), (MultilabelRecall, "recall"), (MultilabelF1Score, "f1"),
                     (MultilabelAccuracy, "accuracy")):
        per_stage = cls(num_labels=4, average="none")(probs, y)
        for k, stage in enumerate(("ring", "trophozoite", "schizont", "gametocyte")):
            assert m[f"{stage}/{key}"] == pytest.approx(per_stage[k].item(), abs=1e-6), (stage, key)
        assert m[key] == pytest.approx(cls(num_labels=4, average="micro")(probs, y).item(), abs=1e-6), key


def test_multilabel_metrics_errors_and_table():
    with pytest.raises(ValueError, match="must both be"):
        multilabel_metrics(torch.zeros(3, 4), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="multi-hot"):
        multilabel_metrics(torch.zeros(2, 4), torch.full((2, 4), 0.5))
    m = multilabel_metrics(_logits([[1, 0, 0, 0]]), torch.tensor([[1.0, 0, 0, 0]]))
    table = format_metrics_table({"train": m, "val": m})
    assert table.splitlines()[0].startswith("| stage | train P")
    assert "| ring | 1.00 | 1.00 | 1.00 | 1.00 | 1 |" in table
    assert "| trophozoite | – | – | – | 1.00 | 0 |" in table


def test_patch_features_and_frechet_distance():
    x = torch.zeros(2, 3, 4, 4)
    x[0, 0] = 1.0  # a red patch
    x[1, :, :, 2:] = 1.0  # left half black-ish grey 0, right half 1: one vertical edge
    f = patch_features(x)
    assert f.shape == (2, len(FEATURE_NAMES)) and f.dtype == torch.float64
    assert f[0, :3].tolist() == [1.0, 0.0, 0.0] and f[0, 3:6].tolist() == [0.0, 0.0, 0.0] and f[0, 6] == 0.0
    assert f[1, :3].tolist() == [0.5, 0.5, 0.5]
    # edge strength: horizontal neighbours differ by 1 at 1 of 3 column pairs, vertical never -> (1/3 + 0) / 2
    assert f[1, 6].item() == pytest.approx(1 / 6)
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(200, 3, 8, 8, generator=gen) * 2 - 1
    b = torch.rand(200, 3, 8, 8, generator=gen) * 2 - 1
    assert feature_frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert feature_frechet_distance(a, b) < feature_frechet_distance(a, b * 0.5)  # lower contrast is further
    with pytest.raises(ValueError, match="RGB patches"):
        patch_features(torch.zeros(2, 1, 4, 4))


def test_checkerboard_energy():
    smooth = torch.linspace(-1, 1, 8).view(1, 1, 1, 8).expand(1, 3, 8, 8)
    board = (torch.arange(8).view(8, 1) + torch.arange(8).view(1, 8)) % 2 * 2.0 - 1  # period 2 both ways
    stripes = (torch.arange(8) % 2 * 2.0 - 1).view(1, 8).expand(8, 8)  # period 2 along x only
    x = torch.cat([smooth, board.expand(1, 3, 8, 8), stripes.expand(1, 3, 8, 8)])
    e = checkerboard_energy(x)
    assert e[1].item() == pytest.approx(1.0) and e[2].item() == pytest.approx(1.0)
    assert 0 < e[0].item() < 0.1
    with pytest.raises(ValueError, match="even"):
        checkerboard_energy(torch.zeros(1, 3, 5, 5))


def test_random_dihedral_keeps_content():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 6, 6, generator=gen)
    out = random_dihedral(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and not torch.equal(out, x)
    for i in range(len(x)):  # every output is one of the 8 symmetries of its own input
        variants = [x[i].rot90(k, dims=(-2, -1)) for k in range(4)]
        variants += [v.flip(-1) for v in variants]
        assert any(torch.equal(out[i], v) for v in variants)
    assert torch.equal(out, random_dihedral(x, torch.Generator().manual_seed(1)))  # reproducible
    with pytest.raises(ValueError, match="square"):
        random_dihedral(torch.zeros(2, 3, 4, 6))


def test_figures(tmp_path):
    curves = {"train/loss": [1.0, 0.5, 0.25], "val/loss": [1.0, math.nan, 0.5]}
    plot_epoch_curves(curves, [["train/loss", "val/loss"]], path=tmp_path / "c.png")
    x = torch.rand(6, 3, 8, 8) * 2 - 1
    y = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]).float()
    probs = y * 0.9 + 0.05
    probs[4] = 0.1  # one wrong
    plot_prediction_gallery(x, y, probs, per_group=4, path=tmp_path / "g.png")
    plot_prediction_gallery(x, y, y * 0.9 + 0.05, per_group=4, path=tmp_path / "all_right.png")  # no wrong group
    assert all((tmp_path / n).stat().st_size > 1000 for n in ("c.png", "g.png", "all_right.png"))
    assert stage_names([1, 0, 0, 1]) == "R+G" and stage_names(np.zeros(4)) == "-"
