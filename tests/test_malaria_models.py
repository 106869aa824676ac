"""Lab 3: the notebook's own networks (shapes, parameter counts, the head) and its LSGAN and stage losses.

Model files and malaria_test.py: tests/test_malaria_model_files.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.malaria.models import MalariaGANConfig, recalibrate_batchnorm
from helpers.models import count_parameters

from lab3_support import notebook_namespace


# ----------------------------------------------------------------------------- the notebook's losses
# The LSGAN losses and J_C are student code: they live only in dcgan_malaria.ipynb. These tests run
# the notebook's own definitions (its imports, functions and classes; nothing else).
@pytest.fixture(scope="module")
def nb():
    return notebook_namespace()


def test_lsgan_d_loss_by_hand(nb):
    lsgan_d_loss = nb["lsgan_d_loss"]
    score_real = torch.tensor([0.5, 1.5, 1.0])
    score_fake = torch.tensor([0.0, 1.0, -1.0, 2.0])  # a different m for the fake term
    # 1/(2*3) * (0.25 + 0.25 + 0) + 1/(2*4) * (0 + 1 + 1 + 4) = 0.5/6 + 6/8
    assert lsgan_d_loss(score_real, score_fake).item() == pytest.approx(0.5 / 6 + 6 / 8)
    assert lsgan_d_loss(score_real[:, None], score_fake[:, None]).item() == pytest.approx(0.5 / 6 + 6 / 8)
    assert lsgan_d_loss(torch.ones(5), torch.zeros(5)).item() == 0.0  # the optimum of D


def test_lsgan_d_loss_gradient_by_hand(nb):
    score_real = torch.tensor([0.5, 1.5, 1.0], requires_grad=True)
    score_fake = torch.tensor([0.0, 1.0, -1.0], requires_grad=True)
    nb["lsgan_d_loss"](score_real, score_fake).backward()
    # d/ds_i of 1/(2m) (s_i - 1)^2 = (s_i - 1)/m ; of 1/(2m) s_i^2 = s_i/m
    assert torch.allclose(score_real.grad, torch.tensor([-0.5, 0.5, 0.0]) / 3)
    assert torch.allclose(score_fake.grad, torch.tensor([0.0, 1.0, -1.0]) / 3)


def test_lsgan_g_loss_by_hand(nb):
    lsgan_g_loss = nb["lsgan_g_loss"]
    score_fake = torch.tensor([0.0, 1.0, -1.0], requires_grad=True)
    loss = lsgan_g_loss(score_fake)
    assert loss.item() == pytest.approx((1 + 0 + 4) / 3)  # 1/m sum (s - 1)^2
    loss.backward()
    assert torch.allclose(score_fake.grad, 2 * (score_fake.detach() - 1) / 3)
    assert lsgan_g_loss(torch.ones(4)).item() == 0.0


def test_stage_loss_by_hand(nb):
    logits = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # -log sigma(0), -log(1 - sigma(2)), -log(1 - sigma(-1)), -log sigma(0.5), averaged over the 4 entries
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    want = -(np.log(sig(0.0)) + np.log(1 - sig(2.0)) + np.log(1 - sig(-1.0)) + np.log(sig(0.5))) / 4
    assert nb["stage_loss_bce"](logits, targets).item() == pytest.approx(want, rel=1e-6)
    big = torch.tensor([[200.0, -200.0]])  # saturated: from logits, not sigmoid + BCELoss
    assert nb["stage_loss_bce"](big, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------------- the notebook's networks
@pytest.mark.parametrize("size", [32, 64])
def test_generator_and_discriminator_shapes(nb, size):
    torch.manual_seed(0)
    cfg = MalariaGANConfig(image_size=size)
    G, D = nb["Generator"](cfg), nb["Discriminator"](cfg)
    z = torch.randn(4, 100)
    x = G(z)
    assert x.shape == (4, 3, size, size)
    assert x.min() >= -1 and x.max() <= 1  # tanh
    assert G.project.out_features == 128 * 4 * 4  # reshaped to (128, 4, 4)
    assert D(x).shape == (4,)
    # Every conv of the trunk halves the side: S -> S/2 -> ... -> 4.
    sides = []
    hooks = [blk.register_forward_hook(lambda m, i, o: sides.append(o.shape[-1])) for blk in D.features]
    D(x)
    for h in hooks:
        h.remove()
    assert sides == [size // 2 ** (k + 1) for k in range(len(sides))] and sides[-1] == 4
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.features[0])  # none on the input layer
    assert all(m.negative_slope == 0.2 for m in D.modules() if isinstance(m, torch.nn.LeakyReLU))


def test_parameter_counts(nb):
    cfg = MalariaGANConfig()  # 32 px
    g = (100 * 2048 + 2048) + 2 * 128 + 128 * 64 * 16 + 2 * 64 + 64 * 32 * 16 + 2 * 32 + 32 * 3 * 16 + 3
    d = (3 * 64 * 16 + 64) + 64 * 128 * 16 + 2 * 128 + 128 * 256 * 16 + 2 * 256 + (256 * 16 + 1)
    head = (256 * 16 * 128 + 128) + (128 * 4 + 4)
    assert count_parameters(nb["Generator"](cfg)) == g
    assert count_parameters(nb["Discriminator"](cfg)) == d
    assert count_parameters(nb["MultiTaskDiscriminator"](cfg)) == d + head


def test_multitask_head_output(nb):
    torch.manual_seed(0)
    M = nb["MultiTaskDiscriminator"](MalariaGANConfig())
    x = torch.randn(6, 3, 32, 32) * 3  # large inputs: probabilities must still be in [0, 1]
    score, probs = M(x)
    assert score.shape == (6,) and probs.shape == (6, 4)
    assert probs.min() >= 0 and probs.max() <= 1
    score2, logits = M.forward_logits(x)
    assert torch.allclose(probs, torch.sigmoid(logits)) and torch.allclose(score, score2)
    assert torch.allclose(M.classify_logits(x), logits)
    # The head reads the second-to-last conv (the last halving block, cam_layer), (B, 256, 4, 4).
    assert M.cam_layer is M.features[-1]
    seen = {}
    h = M.head.register_forward_hook(lambda m, i, o: seen.update(shape=i[0].shape))
    M(x)
    h.remove()
    assert seen["shape"] == (6, 256, 4, 4)
    assert len(M.head) == 4 and sum(isinstance(m, torch.nn.Linear) for m in M.head) == 2
    # Same trunk and score names as the plain discriminator: its weights load into the multi-task one.
    M.load_state_dict(nb["Discriminator"](MalariaGANConfig()).state_dict(), strict=False)


def test_recalibrate_batchnorm_uses_the_given_patches_only():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4), torch.nn.Linear(2, 2))
    bn = model[1]
    model[0].train()
    model[:2](torch.randn(8, 3, 2, 2) * 5 + 3)  # running statistics of other data ("fakes")
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    model.eval()
    x = torch.randn(40, 3, 2, 2)
    recalibrate_batchnorm(model, x, forward=model[:2], batch_size=10)  # 4 equal chunks
    with torch.no_grad():
        a = model[0](x)  # (40, 4, 2, 2): what the BatchNorm layer sees
    chunks = a.split(10)
    want_mean = torch.stack([c.mean(dim=(0, 2, 3)) for c in chunks]).mean(0)
    want_var = torch.stack([c.var(dim=(0, 2, 3), unbiased=True) for c in chunks]).mean(0)
    assert torch.allclose(bn.running_mean, want_mean, atol=1e-5)
    assert torch.allclose(bn.running_var, want_var, atol=1e-5)
    assert not model.training and bn.momentum == 0.1  # mode and momentum restored
    for k, v in model.state_dict().items():
        if k in weights:
            assert torch.equal(v, weights[k]), k  # weights untouched
