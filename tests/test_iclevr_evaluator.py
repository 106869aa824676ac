"""The i-CLEVR evaluator: the course's metric by hand, input checks, the committed weights on fresh renders."""

import hashlib
import json

import numpy as np
import pytest
import torch

from helpers.iclevr import evaluator as ev
from helpers.iclevr.data import RENDERER_VERSION, encode_conditions, render_reference
from helpers.iclevr.render import OBJECTS
from helpers.iclevr.train_evaluator import exact_match, heldout_mask


def _logits(rows: list[list[int]]) -> torch.Tensor:
    """(n, 24) scores whose ranking is the given index order (first = highest), the rest far below."""
    out = torch.full((len(rows), 24), -10.0)
    for i, order in enumerate(rows):
        for rank, j in enumerate(order):
            out[i, j] = 5.0 - rank
    return out


def test_per_object_accuracy_against_hand_computed_values():
    conditions = [[OBJECTS[0]], [OBJECTS[1], OBJECTS[2]], [OBJECTS[3], OBJECTS[4], OBJECTS[5]]]
    logits = _logits([[0, 9], [1, 5, 2], [3, 7, 4, 5]])
    # image 0: top-1 {0} -> 1 of 1; image 1: top-2 {1, 5} -> 1 of 2; image 2: top-3 {3, 7, 4} -> 2 of 3
    assert ev.per_object_accuracy(logits, conditions) == pytest.approx(4 / 6)
    assert ev.per_object_accuracy(torch.sigmoid(logits), encode_conditions(conditions)) == pytest.approx(4 / 6)
    assert ev.per_object_accuracy(logits.numpy(), conditions) == pytest.approx(4 / 6)
    perfect = _logits([[0], [2, 1], [5, 4, 3]])
    assert ev.per_object_accuracy(perfect, conditions) == 1.0
    assert exact_match(logits, torch.from_numpy(encode_conditions(conditions))) == pytest.approx(1 / 3)
    # not the mean of per-image accuracies (1 + 1/2 + 2/3) / 3: every object counts once
    assert ev.per_object_accuracy(logits, conditions) != pytest.approx((1 + 0.5 + 2 / 3) / 3)
    # one condition for every image
    assert ev.per_object_accuracy(_logits([[0], [1], [0]]), [OBJECTS[0]]) == pytest.approx(2 / 3)


def test_per_object_accuracy_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match=r"\(n, 24\)"):
        ev.per_object_accuracy(torch.zeros(3, 10), [["red cube"]] * 3)
    with pytest.raises(ValueError, match="2 conditions for n=3"):
        ev.per_object_accuracy(torch.zeros(3, 24), [["red cube"], ["blue cube"]])


@pytest.fixture(scope="module")
def evaluator():
    return ev.load_evaluator()


def test_the_committed_evaluator_is_frozen_small_and_recorded(evaluator):
    assert not evaluator.training and not any(p.requires_grad for p in evaluator.parameters())
    assert ev.WEIGHTS_PATH.stat().st_size < 2_000_000
    record = ev.load_record()
    assert record["weights_sha256"] == hashlib.sha256(ev.WEIGHTS_PATH.read_bytes()).hexdigest()
    assert record["heldout_per_object_accuracy"] >= 0.99
    assert record["renderer_version"] == RENDERER_VERSION
    for key in ("test_64px", "new_test_64px", "test_32px", "new_test_32px"):
        assert 0.9 <= record["floor"][key]["mean"] <= 1.0


def _random_conditions(n: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [list(rng.choice(OBJECTS, size=int(rng.integers(1, 4)), replace=False)) for _ in range(n)]


@pytest.mark.parametrize("size", [64, 32])
def test_the_committed_evaluator_recognises_freshly_rendered_scenes(evaluator, size):
    conditions = _random_conditions(200, seed=2024)
    images = render_reference(conditions, seed=99, size=size).float() / 255    # scenes never seen in training
    acc = ev.evaluate(images, conditions, evaluator)
    assert acc >= 0.95, f"per-object accuracy {acc:.3f} on 200 rendered {size}px scenes"
    shuffled = conditions[1:] + conditions[:1]                                   # the wrong conditions score low
    assert ev.evaluate(images, shuffled, evaluator) < 0.3


def test_features_give_a_small_distance_between_renders_and_a_large_one_to_noise(evaluator):
    conditions = _random_conditions(64, seed=7)
    a = render_reference(conditions, seed=1).float() / 255
    b = render_reference(conditions, seed=2).float() / 255
    feats = ev.features(a, evaluator)
    assert feats.shape == (64, evaluator.num_features) and feats.dtype == torch.float32
    assert ev.feature_distance(a, a, evaluator) == pytest.approx(0.0, abs=1e-3)
    noise = torch.rand(a.shape, generator=torch.Generator().manual_seed(0))
    assert ev.feature_distance(a, noise, evaluator) > 5 * ev.feature_distance(a, b, evaluator)


@pytest.mark.parametrize("images, match", [
    (torch.zeros(2, 3, 64, 64, dtype=torch.uint8), r"x.float\(\) / 255"),
    (torch.full((2, 3, 64, 64), -0.5), r"\(x \+ 1\) / 2"),
    (torch.full((2, 3, 64, 64), 255.0), "Scale them"),
    (torch.zeros(2, 64, 64, 3), r"\(N, 3, 64, 64\)"),
    (torch.zeros(2, 3, 48, 48), r"\(N, 3, 32, 32\)"),
    (torch.zeros(3, 64, 64), "got \\(3, 64, 64\\)"),
    (torch.full((2, 3, 64, 64), float("nan")), "NaN"),
    (np.zeros((2, 3, 64, 64), np.float32), "torch.Tensor"),
])
def test_evaluate_refuses_bad_input(images, match):
    with pytest.raises(ValueError, match=match):
        ev.evaluate(images, [["red cube"], ["blue cube"]])


def test_a_missing_or_truncated_weights_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(ev, "WEIGHTS_PATH", tmp_path / "iclevr_evaluator.pt")
    with pytest.raises(FileNotFoundError, match="train_evaluator"):
        ev.load_evaluator()
    data = ev.WEIGHTS_DIR.joinpath("iclevr_evaluator.pt").read_bytes()
    (tmp_path / "iclevr_evaluator.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match="damaged"):
        ev.load_evaluator()
    torch.save({"head.weight": torch.zeros(24, 128)}, tmp_path / "iclevr_evaluator.pt")
    with pytest.raises(RuntimeError, match="not this network"):
        ev.load_evaluator()


def test_the_held_out_split_keeps_each_scene_on_one_side():
    names = [f"CLEVR_train_{i:06d}_{k}.png" for i in range(300) for k in range(3)]
    held = heldout_mask(names, 10).reshape(300, 3)
    assert (held.all(dim=1) | ~held.any(dim=1)).all(), "a scene was split between training and held-out"
    assert 10 <= held[:, 0].sum() <= 60
    assert json.loads(ev.RECORD_PATH.read_text())["config"]["heldout_every"] == 10
