"""Offline metrics (helpers.metrics) and the committed classifiers (helpers.classifiers).

Known answers computed by hand or in closed form; the Fréchet distance is cross-checked
against torchmetrics' FrechetInceptionDistance given the same feature module.
Needs the MNIST / Fashion-MNIST files ($GANLAB_DATA) for the classifier tests.
"""

import math

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn as nn

from helpers import classifiers, metrics
from helpers.classifiers import load_classifier, load_record
from helpers.data import load_images

# --------------------------------------------------------------------------- Fréchet distance


def test_frechet_identical_sets_is_zero():
    feats = np.random.default_rng(0).normal(size=(300, 16))
    assert metrics.frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-8)
    assert metrics.frechet_distance(torch.from_numpy(feats), feats) == pytest.approx(0.0, abs=1e-8)


def test_frechet_shifted_identity_gaussians_is_squared_shift():
    mu = np.array([1.0, -2.0, 0.5])
    eye = np.eye(3)
    assert metrics.frechet_distance_from_stats(np.zeros(3), eye, mu, eye) == pytest.approx(5.25, rel=1e-12)
    # From samples: N(0, I) vs N(mu, I), estimated means and covariances.
    rng = np.random.default_rng(1)
    a = rng.normal(size=(50_000, 3))
    b = rng.normal(size=(50_000, 3)) + mu
    assert metrics.frechet_distance(a, b) == pytest.approx(5.25, abs=0.03)


def test_frechet_different_covariances_trace_term():
    # Diagonal covariances commute: Tr(A + B - 2 sqrt(AB)) = sum (sqrt(a_i) - sqrt(b_i))^2.
    sigma_a, sigma_b = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 1.0])
    mu_a, mu_b = np.zeros(3), np.array([0.0, 3.0, 0.0])
    expected = 9.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    assert metrics.frechet_distance_from_stats(mu_a, sigma_a, mu_b, sigma_b) == pytest.approx(expected, rel=1e-12)
    # N(0, I) vs N(0, 4I) in d dimensions: d * (1 + 4 - 2 * 2) = d.
    assert metrics.frechet_distance_from_stats(np.zeros(5), np.eye(5), np.zeros(5), 4 * np.eye(5)) == pytest.approx(5.0)


def test_frechet_non_commuting_covariances_match_scipy_sqrtm():
    rng = np.random.default_rng(2)
    m_a, m_b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    sigma_a, sigma_b = m_a @ m_a.T, m_b @ m_b.T + 0.1 * np.eye(6)
    mu_a, mu_b = rng.normal(size=6), rng.normal(size=6)
    covmean = scipy.linalg.sqrtm(sigma_a @ sigma_b).real
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(sigma_a + sigma_b - 2 * covmean)
    got = metrics.frechet_distance_from_stats(mu_a, sigma_a, mu_b, sigma_b)
    assert got == pytest.approx(expected, rel=1e-9)
    assert metrics.frechet_distance_from_stats(mu_b, sigma_b, mu_a, sigma_a) == pytest.approx(got, rel=1e-9)


def test_frechet_rejects_mismatched_features():
    with pytest.raises(ValueError, match="Feature sizes differ"):
        metrics.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


class _ClassifierFeatures(nn.Module):
    """torchmetrics reads ``num_features`` instead of probing a (3, 299, 299) dummy image."""

    def __init__(self, model: classifiers.Classifier):
        super().__init__()
        self.model = model
        self.num_features = model.num_features

    def forward(self, x):
        return self.model.features(x).double()  # float64 so both sides compare tightly


def test_frechet_matches_torchmetrics_with_same_feature_module():
    from torchmetrics.image.fid import FrechetInceptionDistance

    model = load_classifier("mnist")
    x, _ = load_images("mnist", train=False, limit=600)
    x_real, x_fake = x[:300], (x[300:] + 0.5 * torch.randn_like(x[300:])).clamp(-1, 1)
    fid = FrechetInceptionDistance(feature=_ClassifierFeatures(model))
    fid.update(x_real, real=True)
    fid.update(x_fake, real=False)
    expected = fid.compute().item()
    with torch.no_grad():
        ours = metrics.frechet_distance(model.features(x_real), model.features(x_fake))
    assert expected > 1.0  # the noisy digits are measurably different
    assert ours == pytest.approx(expected, rel=1e-6)


# --------------------------------------------------------------------------- class balance


def test_one_class_generator_kl_log10_and_conditional_accuracy_tenth():
    pred = np.full(1000, 3)                                      # generator emits only "3"
    requested = np.random.default_rng(3).permutation(np.arange(1000) % 10)  # balanced, random order
    hist = metrics.class_histogram(pred, 10)
    assert hist.tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert metrics.kl_from_uniform(hist) == pytest.approx(math.log(10))
    overall, per_class = metrics.conditional_accuracy(pred, requested, 10)
    assert overall == pytest.approx(0.1)
    assert per_class.tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]


def test_kl_from_uniform_known_values():
    assert metrics.kl_from_uniform(np.full(10, 0.1)) == pytest.approx(0.0, abs=1e-12)
    assert metrics.kl_from_uniform([5, 5, 0, 0]) == pytest.approx(math.log(2))  # counts normalised
    p = np.array([0.5, 0.25, 0.25])
    assert metrics.kl_from_uniform(p) == pytest.approx(float(np.sum(p * np.log(3 * p))))


def test_class_histogram_and_conditional_accuracy_per_class():
    hist = metrics.class_histogram(torch.tensor([0, 1, 1, 3]), 4)
    assert hist.tolist() == [0.25, 0.5, 0.0, 0.25]
    overall, per_class = metrics.conditional_accuracy([0, 1, 1, 3], [0, 1, 2, 2], 4)
    assert overall == 0.5
    assert per_class[:3].tolist() == [1.0, 1.0, 0.0] and math.isnan(per_class[3])
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        metrics.class_histogram([0, 4], 4)


def test_confident_fraction_counts_max_prob_at_least_threshold():
    probs = torch.tensor([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])  # float32
    assert metrics.confident_fraction(probs) == 0.5   # 0.9 itself counts, in float32 too
    assert metrics.confident_fraction(np.array([[0.9, 0.1], [0.8, 0.2]])) == 0.5  # float64
    with pytest.raises(ValueError, match="softmax"):
        metrics.confident_fraction(torch.tensor([[3.0, -1.0]]))  # logits, not probabilities


# --------------------------------------------------------------------------- k-NN manifolds


def test_precision_recall_density_coverage_hand_computed():
    # Real points 0..4 on a line: with k=1 every real ball has radius 1.
    # Fake points 0.5 and 10: their k=1 radius is 9.5.
    real = np.arange(5.0)[:, None]
    fake = np.array([[0.5], [10.0]])
    precision, recall = metrics.precision_recall(real, fake, k=1)
    assert precision == 0.5   # 0.5 lies in the balls of 0 and 1; 10 in none
    assert recall == 1.0      # every real point is within 9.5 of 0.5
    density, coverage = metrics.density_coverage(real, fake, k=1)
    assert density == 1.0     # (2 balls + 0 balls) / (k * 2 fakes)
    assert coverage == 0.4    # balls of 0 and 1 hold a fake, 2, 3 and 4 do not


def test_precision_recall_identical_and_collapsed():
    real = np.random.default_rng(4).normal(size=(400, 5))
    assert metrics.precision_recall(real, real) == (1.0, 1.0)
    assert metrics.density_coverage(real, real)[1] == 1.0
    collapsed = np.repeat(real[:1], 100, axis=0)   # every sample is the same real point
    precision, recall = metrics.precision_recall(real, collapsed)
    assert precision == 1.0 and recall <= 0.01
    assert metrics.density_coverage(real, collapsed)[1] <= 0.02
    far = real + 100.0
    assert metrics.precision_recall(real, far) == (0.0, 0.0)
    assert metrics.density_coverage(real, far) == (0.0, 0.0)


# --------------------------------------------------------------------------- classifiers


@pytest.mark.parametrize("dataset, min_accuracy", [("mnist", 0.99), ("fashion_mnist", 0.90)])
def test_committed_classifier_scores_on_test_images(dataset, min_accuracy):
    model = load_classifier(dataset)
    x, y = load_images(dataset, train=False)  # all 10000: MNIST's first few thousand are harder
    _, probs = classifiers.classify(model, x)
    assert (probs.argmax(dim=1) == y).float().mean().item() >= min_accuracy
    record = load_record(dataset)
    assert record["test_accuracy"] >= min_accuracy
    assert "python -m helpers.train_classifier --dataset " + dataset in record["command"]
    assert classifiers.weights_path(dataset).stat().st_size < 1_000_000
    assert model.features(x[:4]).shape == (4, model.num_features)


def test_load_classifier_missing_weights_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(classifiers, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m helpers.train_classifier --dataset mnist"):
        load_classifier("mnist")


def test_classifier_rejects_images_outside_minus_one_one():
    model = load_classifier("mnist")
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        model(torch.full((2, 1, 28, 28), 255.0))
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        model(torch.zeros(2, 28, 28))


# --------------------------------------------------------------------------- evaluate_samples


def test_evaluate_samples_one_class_generator_against_real_floor():
    x, y = load_images("mnist", train=False)
    ones = x[y == 1][:500]                                        # a "generator" that only draws 1s
    requested = torch.randperm(500, generator=torch.Generator().manual_seed(0)) % 10
    out = metrics.evaluate_samples(ones, "mnist", requested=requested)
    floor = out["real_floor"]
    assert out["num_samples"] == 500
    assert out["kl_from_uniform"] == pytest.approx(math.log(10), abs=0.05)
    assert out["max_class_fraction"] >= 0.98
    assert out["conditional_accuracy"] == pytest.approx(0.1, abs=0.01)
    assert floor["kl_from_uniform"] < 0.05
    assert floor["conditional_accuracy"] >= 0.97                # the classifier's own accuracy
    assert out["frechet_distance"] > 10 * floor["frechet_distance"]
    assert out["recall"] < 0.3 < floor["recall"]
    assert out["coverage"] < 0.3 < floor["coverage"]
    assert out["inception_fid"].startswith("skipped:")
    assert "not Inception FID" in out["note"]


# --------------------------------------------------------------------------- Inception FID


def test_inception_fid_skips_without_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("GANLAB_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))   # an empty hub: nothing cached
    x = torch.zeros(4, 1, 28, 28)
    result = metrics.inception_fid(x, x)
    assert result.startswith("skipped: Inception weights not found at ")
    assert str(tmp_path) in result and "allow_download=False" in result


def test_inception_fid_runs_with_local_weights(tmp_path, monkeypatch):
    """The Colab path, without the real weights: a random Inception, 64-d features."""
    import torch_fidelity  # noqa: F401 - torchmetrics builds its Inception from it (requirements.txt)
    from torchmetrics.image.fid import NoTrainInceptionV3

    weights = tmp_path / "inception.pth"
    torch.save({}, weights)
    monkeypatch.setattr(NoTrainInceptionV3, "load_state_dict", lambda self, state_dict, *a, **k: None)
    torch.manual_seed(0)
    x = torch.rand(16, 1, 28, 28) * 2 - 1
    result = metrics.inception_fid(x, x.flip(-1), weights_path=weights, feature=64)
    assert isinstance(result, float) and math.isfinite(result)


def test_inception_line_prints_the_value_or_why_it_was_skipped():
    from helpers.metrics import inception_line
    assert inception_line({"inception_fid": 12.345, "real_floor": {"inception_fid": 1.5}}) == \
        "Inception FID: 12.35   (real: 1.50)"
    skipped = "skipped: Inception weights not found at /x and allow_download=False"
    assert inception_line({"inception_fid": skipped, "real_floor": {"inception_fid": skipped}}) == f"Inception FID {skipped}"
