"""Sample scoring for the grader (helpers.course.scoring): copies of training images, a trained
checkpoint's samples against the named thresholds, and reading a checkpoint's config.

Real images stand in for generators: real test images must score like the real-data floor and
pass, training images must be caught as copies, noise must fail. Needs the MNIST /
Fashion-MNIST files ($GANLAB_DATA). The copy reference is built once per dataset for the whole
module (about 10-40 s each on a 2-core CPU).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from helpers.checkpoints import CheckpointError, CheckpointManager
from helpers.course import scoring
from helpers.course.scoring import THRESHOLDS, checkpoint_config, copy_reference, copy_share, score_samples
from helpers.data import load_images
from helpers.training import fit


def _unit(x: torch.Tensor) -> np.ndarray:
    """Loaded images (N, 1, 28, 28) in [-1, 1] -> what generate returns: float32 (N, 28, 28) in [0, 1]."""
    return ((x[:, 0] + 1) / 2).numpy().astype(np.float32)


@pytest.fixture(scope="module")
def mnist_train() -> np.ndarray:
    return _unit(load_images("mnist", train=True, limit=3000)[0])


@pytest.fixture(scope="module")
def mnist_test() -> np.ndarray:
    return _unit(load_images("mnist", train=False)[0])


@pytest.fixture(scope="module")
def fashion_test() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_images("fashion_mnist", train=False)
    return _unit(x), y.numpy()


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 28, 28), dtype=np.float32)


# --------------------------------------------------------------------------- copy_share

def test_training_images_are_copies(mnist_train):
    result = copy_share(mnist_train[:300], "mnist")
    assert result["n"] == 300 and result["copies"] == 300 and result["share"] == 1.0
    assert result["passed"] is False and result["max_share"] == 0.05
    assert result["threshold"] > 0.1                     # a real gap, not rounding noise
    assert "300 of 300" in result["detail"] and "not return training images" in result["detail"]
    # The nearest training image of an exact copy is the image itself, at distance ~0.
    assert len(result["examples"]) == 10
    assert all(e["distance"] < 1e-3 for e in result["examples"])
    assert all(e["train_index"] == e["sample"] for e in result["examples"])


def test_test_images_are_copies_about_one_percent_of_the_time(mnist_test):
    # The threshold is the 1st percentile of test-to-train distances, so ~1% of test images fall under it.
    result = copy_share(mnist_test[-1000:], "mnist")
    assert 0.0 < result["share"] <= 0.03
    assert result["passed"] is True
    assert result["copies"] == round(result["share"] * 1000)


def test_noise_is_never_a_copy():
    result = copy_share(_noise(200), "mnist")
    assert result["copies"] == 0 and result["share"] == 0.0 and result["passed"] is True
    assert result["examples"] == []
    assert result["median_distance"] > 3 * result["threshold"]


def test_torch_input_and_channel_axis_give_the_same_result(mnist_train):
    x = np.concatenate([mnist_train[:20], _noise(20)])
    from_numpy = copy_share(x, "mnist")
    from_torch = copy_share(torch.from_numpy(x).unsqueeze(1), "mnist")
    assert from_numpy["copies"] == from_torch["copies"] == 20
    assert from_numpy["share"] == from_torch["share"] == 0.5


def test_share_above_five_percent_fails(mnist_train, mnist_test):
    x = np.concatenate([mnist_train[:6], _noise(94)])   # 6% copies
    assert copy_share(x, "mnist")["passed"] is False
    x = np.concatenate([mnist_train[:5], _noise(95)])   # 5%: still allowed
    assert copy_share(x, "mnist")["passed"] is True


def test_reference_is_built_once_per_process(mnist_train):
    copy_share(mnist_train[:5], "mnist")
    first = copy_reference("mnist")
    assert copy_reference("mnist") is first
    assert first.train_feats.shape == (60000, 128) and first.train_feats.dtype == torch.float32
    assert 0.1 < first.threshold < 10


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((4, 32, 32), np.float32), "shape"),
        (np.zeros((28, 28), np.float32), "shape"),
        (np.zeros((0, 28, 28), np.float32), "shape"),
        (np.full((4, 28, 28), -1.0, np.float32), r"\[0, 1\]"),
        (np.full((4, 28, 28), 255, np.uint8), "floating point"),
        (np.full((4, 28, 28), np.nan, np.float32), "NaN"),
        ([[0.0] * 28] * 28, "numpy array or a torch tensor"),
    ],
)
def test_bad_images_are_rejected_with_a_clear_error(images, message):
    with pytest.raises(ValueError, match=message):
        copy_share(images, "mnist")


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValueError, match="Unknown dataset 'cifar10'.*mnist, fashion_mnist"):
        copy_share(_noise(4), "cifar10")


def test_reference_kept_on_disk_is_reused_and_rebuilt_when_stale(tmp_path, monkeypatch):
    # A small stand-in training set keeps this fast; the real reference of the process is put aside.
    monkeypatch.setattr(scoring, "_REFERENCES", {})
    real_load = scoring.load_images
    loads = []

    def small_load(name, train=True, **kwargs):
        loads.append(train)
        return real_load(name, train=train, limit=1000)

    monkeypatch.setattr(scoring, "load_images", small_load)
    built = copy_reference("mnist", cache_dir=tmp_path)
    assert (tmp_path / "copy_reference_mnist.pt").is_file() and loads == [True, False]

    monkeypatch.setattr(scoring, "_REFERENCES", {})          # a new process: read from disk, load no images
    loaded = copy_reference("mnist", cache_dir=tmp_path)
    assert loads == [True, False]
    assert loaded.threshold == built.threshold and torch.equal(loaded.train_feats, built.train_feats)

    monkeypatch.setattr(scoring, "_REFERENCES", {})          # another recipe: the saved file is stale
    monkeypatch.setattr(scoring, "COPY_PERCENTILE", 2.0)
    rebuilt = copy_reference("mnist", cache_dir=tmp_path)
    assert loads == [True, False, True, False] and rebuilt.threshold > built.threshold

    (tmp_path / "copy_reference_mnist.pt").write_bytes(b"damaged")  # a damaged file is rebuilt, not trusted
    monkeypatch.setattr(scoring, "_REFERENCES", {})
    copy_reference("mnist", cache_dir=tmp_path)
    assert loads == [True, False] * 3


# --------------------------------------------------------------------------- score_samples

def _vanilla_generate(images: np.ndarray):
    """A stand-in for a vanilla generate(n, seed=...) that returns a seeded draw of ``images``."""
    calls = []

    def generate(n, seed=None):
        calls.append((n, seed))
        return images[np.random.default_rng(seed).choice(len(images), n, replace=False)]

    generate.calls = calls
    return generate


def _cwgan_generate(images: np.ndarray, labels: np.ndarray, ignore_class: bool = False):
    """A stand-in for generate(n, c, seed=...) returning real images of class c (or of any class)."""
    calls = []

    def generate(n, c, seed=None):
        calls.append((n, c, seed))
        pool = np.arange(len(images)) if ignore_class else np.flatnonzero(labels == c)
        return images[np.random.default_rng(seed).choice(pool, n, replace=False)]

    generate.calls = calls
    return generate


def test_vanilla_real_test_images_pass_like_the_floor(mnist_test):
    generate = _vanilla_generate(mnist_test)
    result = score_samples("vanilla", generate, n=500, seed=7)
    assert generate.calls == [(500, 7)]
    assert result["passed"] is True and result["failed"] == []
    assert result["lab"] == "vanilla" and result["dataset"] == "mnist" and result["n"] == 500
    assert result["thresholds_name"] == scoring.THRESHOLDS_NAME
    names = [line["name"] for line in result["thresholds"]]
    assert names == ["confident_fraction", "min_class_fraction", "max_class_fraction", "frechet_distance", "copy_share"]
    m, floor = result["metrics"], result["floor"]
    assert m["confident_fraction"] > 0.9 and abs(m["confident_fraction"] - floor["confident_fraction"]) < 0.05
    assert m["frechet_distance"] < 2 * floor["frechet_distance"]
    assert len(m["class_histogram"]) == 10 and m["copy_share"] <= 0.05
    fd = result["thresholds"][3]
    assert fd["limit"] == pytest.approx(10 * floor["frechet_distance"]) and fd["floor"] == floor["frechet_distance"]
    assert result["copies"]["n"] == 500
    json.dumps(result, allow_nan=False)          # goes into the grade report as it is


def test_vanilla_noise_fails(mnist_test):
    result = score_samples("vanilla", lambda n, seed=None: _noise(n, seed), n=200)
    assert result["passed"] is False
    # The classifier calls uniform noise an "8" with confidence (out-of-distribution inputs), so the
    # confident share alone would not catch it; the digit histogram and the FD do.
    assert {"min_class_fraction", "max_class_fraction", "frechet_distance"} <= set(result["failed"])
    assert "copy_share" not in result["failed"]
    assert result["metrics"]["frechet_distance"] > 10 * result["floor"]["frechet_distance"]
    assert "failed:" in result["detail"]


def test_vanilla_training_images_fail_only_on_copies(mnist_train):
    result = score_samples("vanilla", _vanilla_generate(mnist_train), n=500)
    assert result["passed"] is False and result["failed"] == ["copy_share"]
    assert result["copies"]["share"] == 1.0


def test_cwgan_real_test_images_of_each_class_pass(fashion_test):
    images, labels = fashion_test
    generate = _cwgan_generate(images, labels)
    result = score_samples("cwgan", generate, n=200, seed=100)
    assert generate.calls == [(20, c, 100 + c) for c in range(10)]
    assert result["passed"] is True, result["detail"]
    assert result["dataset"] == "fashion_mnist"
    assert [line["name"] for line in result["thresholds"]] == ["conditional_accuracy", "frechet_distance", "copy_share"]
    m, floor = result["metrics"], result["floor"]
    assert m["conditional_accuracy"] > 0.8 and abs(m["conditional_accuracy"] - floor["conditional_accuracy"]) < 0.1
    assert len(m["conditional_accuracy_per_class"]) == 10
    assert m["frechet_distance"] < 2 * floor["frechet_distance"]


def test_cwgan_ignoring_the_class_fails_on_conditional_accuracy(fashion_test):
    images, labels = fashion_test
    result = score_samples("cwgan", _cwgan_generate(images, labels, ignore_class=True), n=200)
    assert result["failed"] == ["conditional_accuracy"]
    assert result["metrics"]["conditional_accuracy"] < 0.3


def test_cwgan_noise_fails(fashion_test):
    result = score_samples("cwgan", lambda n, c, seed=None: _noise(n, seed), n=100)
    assert result["passed"] is False and {"conditional_accuracy", "frechet_distance"} <= set(result["failed"])


@pytest.mark.parametrize(
    "output, message",
    [
        (lambda n: torch.zeros(n, 28, 28), r"generate\(50, seed=2024\) returned Tensor"),
        (lambda n: np.zeros((n, 1, 32, 32), np.float32), r"generate\(50, seed=2024\).*shape"),
        (lambda n: np.full((n, 28, 28), -1.0, np.float32), r"generate\(50, seed=2024\).*\[0, 1\]"),
        (lambda n: np.zeros((n - 1, 28, 28), np.float32), "returned 49 images, expected 50"),
    ],
)
def test_generate_outside_its_contract_is_a_clear_error(output, message):
    with pytest.raises(ValueError, match=message):
        score_samples("vanilla", lambda n, seed=None: output(n), n=50)


def test_bad_lab_and_n_are_rejected():
    with pytest.raises(ValueError, match="Unknown lab 'malaria'"):
        score_samples("malaria", lambda n, seed=None: _noise(n))
    with pytest.raises(ValueError, match="10 to 10000"):
        score_samples("vanilla", lambda n, seed=None: _noise(n), n=5)
    with pytest.raises(ValueError, match="multiple of 10"):
        score_samples("cwgan", lambda n, c, seed=None: _noise(n), n=105)


def test_thresholds_are_the_documented_ones():
    v, c = THRESHOLDS["vanilla"], THRESHOLDS["cwgan"]
    assert (v.confident_fraction_min, v.class_fraction_min, v.class_fraction_max, v.fd_floor_ratio_max,
            v.copy_share_max) == (0.80, 0.05, 0.15, 10.0, 0.05)
    assert (c.conditional_accuracy_min, c.fd_floor_ratio_max, c.copy_share_max) == (0.75, 10.0, 0.05)
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.confident_fraction_min = 0.0


# --------------------------------------------------------------------------- checkpoint_config

@dataclasses.dataclass
class _TinyConfig:
    latent_dim: int = 8     # size of z
    lr: float = 2e-4        # learning rate
    dataset: str = "mnist"  # which images


@pytest.fixture
def trained_checkpoint(tmp_path):
    """A real checkpoint written by fit (one epoch, one step of a tiny model)."""
    G = nn.Linear(2, 2)
    opt = torch.optim.SGD(G.parameters(), lr=0.1)

    def train_step(x):
        loss = G(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    fit(train_step, [(torch.ones(4, 2),)], 1, {"G": G}, {"G": opt}, str(tmp_path / "ckpt"), config=_TinyConfig())
    return tmp_path / "ckpt" / "last.pt"


def test_checkpoint_config_returns_the_saved_config(trained_checkpoint):
    assert checkpoint_config(trained_checkpoint) == {"latent_dim": 8, "lr": 2e-4, "dataset": "mnist"}


def test_checkpoint_config_rejects_damaged_and_foreign_files(trained_checkpoint, tmp_path):
    data = trained_checkpoint.read_bytes()
    cases = {
        "truncated.pt": (data[: len(data) // 2], "corrupt or truncated"),
        "empty.pt": (b"", "empty"),
        "page.pt": (b"<!DOCTYPE html><html><body>Google Drive - virus scan warning</body></html>", "HTML page"),
        "notes.pt": (b"hello, this is not a checkpoint\n", "not a PyTorch checkpoint"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=message):
            checkpoint_config(tmp_path / name)
    with pytest.raises(CheckpointError, match="No checkpoint at"):
        checkpoint_config(tmp_path / "missing.pt")

    torch.save({"weight": torch.zeros(3)}, tmp_path / "state_dict.pt")      # a bare state_dict
    with pytest.raises(CheckpointError, match="not a GAN Lab checkpoint"):
        checkpoint_config(tmp_path / "state_dict.pt")
    torch.save({"models": {}, "config": nn.Linear(1, 1)}, tmp_path / "code.pt")  # an object weights_only refuses
    with pytest.raises(CheckpointError, match="Refused to load"):
        checkpoint_config(tmp_path / "code.pt")


def test_checkpoint_without_config_is_a_clear_error(tmp_path):
    manager = CheckpointManager(tmp_path)
    G = nn.Linear(2, 2)
    manager.save(manager.state(1, {"G": G}, {}, {"loss": [0.0]}, config=None))
    with pytest.raises(CheckpointError, match="holds no training config.*fit\\(\\.\\.\\., config=cfg\\)"):
        checkpoint_config(manager.last_path)
