"""The Lab 3 instant checks: the solution passes, typical wrong answers fail with a message that says why."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.checks.malaria import (CheckFailed, check_grad_cam, check_lsgan_losses, check_malaria_discriminator, check_malaria_generator,
                            check_malaria_head, check_stage_loss)

from lab3_support import notebook_namespace


@pytest.fixture(scope="module")
def nb():
    return notebook_namespace()


def test_solution_passes_every_check(nb, capsys):
    check_malaria_generator(nb["Generator"])
    check_malaria_discriminator(nb["Discriminator"])
    check_malaria_head(nb["MultiTaskDiscriminator"])
    check_lsgan_losses(nb["lsgan_d_loss"], nb["lsgan_g_loss"])
    check_stage_loss(nb["stage_loss_bce"])
    assert capsys.readouterr().out.count("passed") == 5


@pytest.mark.parametrize("d_loss,g_loss,message", [
    (lambda r, f: ((r - 1) ** 2).mean() + (f ** 2).mean(), None, "lsgan_d_loss"),            # no 1/2
    (lambda r, f: 0.5 * (r ** 2).mean() + 0.5 * ((f - 1) ** 2).mean(), None, "lsgan_d_loss"),  # targets swapped
    (lambda r, f: 0.5 * ((torch.sigmoid(r) - 1) ** 2).mean() + 0.5 * (torch.sigmoid(f) ** 2).mean(), None,
     "lsgan_d_loss"),                                                                         # sigmoid on raw scores
    (lambda r, f: 0.5 * ((r - 1) ** 2).sum() / 6 + 0.5 * (f ** 2).sum() / 6, None, None),      # right, written as sums
    (None, lambda f: 0.5 * ((f - 1) ** 2).mean(), "lsgan_g_loss"),                            # 1/(2m) in J_G
    (None, lambda f: (f ** 2).mean(), "lsgan_g_loss"),                                        # wrong target
    (None, lambda f: -(0.5 * (f ** 2).mean()), "lsgan_g_loss"),                               # minus J_D's fake term
])
def test_wrong_lsgan_losses_fail(nb, d_loss, g_loss, message):
    # the check calls lsgan_d_loss(score_real=..., score_fake=...) and lsgan_g_loss(score_fake=...) by name
    wrong_d, wrong_g = d_loss, g_loss
    d_loss = (lambda score_real, score_fake: wrong_d(score_real, score_fake)) if wrong_d else nb["lsgan_d_loss"]
    g_loss = (lambda score_fake: wrong_g(score_fake)) if wrong_g else nb["lsgan_g_loss"]
    if message is None:
        check_lsgan_losses(d_loss, g_loss)
        return
    with pytest.raises(CheckFailed, match=message) as err:
        check_lsgan_losses(d_loss, g_loss)
    assert "Hint:" in str(err.value) and "off by" in str(err.value)


def test_lsgan_loss_per_patch_or_detached_fails(nb):
    with pytest.raises(CheckFailed, match="single number"):
        check_lsgan_losses(lambda score_real, score_fake: 0.5 * (score_real - 1) ** 2 + 0.5 * score_fake ** 2,
                           nb["lsgan_g_loss"])
    with pytest.raises(CheckFailed, match="gradients"):
        check_lsgan_losses(lambda score_real, score_fake: nb["lsgan_d_loss"](score_real, score_fake).detach(),
                           nb["lsgan_g_loss"])


@pytest.mark.parametrize("loss", [
    lambda l, y: F.binary_cross_entropy(torch.sigmoid(torch.sigmoid(l)), y),   # sigmoid twice
    lambda l, y: F.cross_entropy(l, y),                                        # softmax: single-label
    lambda l, y: F.binary_cross_entropy_with_logits(l, y, reduction="sum"),    # not averaged
    lambda l, y: F.binary_cross_entropy_with_logits(l, 1 - y),                 # labels flipped
])
def test_wrong_stage_losses_fail(loss):
    with pytest.raises(CheckFailed, match="stage_loss_bce"):
        check_stage_loss(lambda logits_stage, targets: loss(logits_stage, targets))  # called by name


def test_head_with_sigmoid_applied_twice_fails(nb):
    class TwiceSigmoid(nb["MultiTaskDiscriminator"]):
        def forward(self, x):
            score, logits = self.forward_logits(x)
            return score, torch.sigmoid(torch.sigmoid(logits))

    with pytest.raises(CheckFailed, match="probabilities of forward"):
        check_malaria_head(TwiceSigmoid)


def test_head_with_a_sigmoid_layer_fails(nb):
    class SigmoidInHead(nb["MultiTaskDiscriminator"]):
        def __init__(self, config):
            super().__init__(config)
            self.head.append(nn.Sigmoid())  # no parameters: the layout still matches

    with pytest.raises(CheckFailed, match="nn.Sigmoid"):
        check_malaria_head(SigmoidInHead)


def test_head_not_reading_the_feature_map_fails(nb):
    class HeadOnPooledFeatures(nb["MultiTaskDiscriminator"]):
        def forward_logits(self, x):
            h = self.features(x)  # the head gets a pooled copy instead of the (B, C, 4, 4) map
            return self.score(h).flatten(), self.head(h.mean(dim=(2, 3), keepdim=True).expand_as(h))

    with pytest.raises(CheckFailed, match="stage logits under fixed weights"):
        check_malaria_head(HeadOnPooledFeatures)


def test_wrong_architectures_fail(nb):
    class NoTanh(nb["Generator"]):
        def __init__(self, config):
            super().__init__(config)
            self.upsample[-1] = nn.Identity()

    with pytest.raises(CheckFailed, match="values in"):
        check_malaria_generator(NoTanh)

    class ReluFirst(nb["Generator"]):
        def forward(self, z):  # ReLU before BatchNorm: same layout, different function
            x = self.project(z).view(z.shape[0], self.config.g_channels, 4, 4)
            return self.upsample(self.project_norm[0](torch.relu(x)))

    with pytest.raises(CheckFailed, match="under fixed weights"):
        check_malaria_generator(ReluFirst)

    class Renamed(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.net = nb["Generator"](config)

        def forward(self, z):
            return self.net(z)

    with pytest.raises(CheckFailed, match="missing keys: project.weight"):
        check_malaria_generator(Renamed)

    class SigmoidD(nb["Discriminator"]):
        def forward(self, x):
            return torch.sigmoid(super().forward(x))

    with pytest.raises(CheckFailed, match=r"D\(x\) under fixed weights"):
        check_malaria_discriminator(SigmoidD)

    class NoConfig(nb["Discriminator"]):
        def __init__(self, config):
            super().__init__(config)
            self.config = None

    with pytest.raises(CheckFailed, match="self.config = config"):
        check_malaria_discriminator(NoConfig)


def test_unwritten_todo_raises_not_implemented():
    class Stub(nn.Module):
        def __init__(self, config):
            super().__init__()
            raise NotImplementedError()

    for check in (check_malaria_generator, check_malaria_discriminator, check_malaria_head):
        with pytest.raises(NotImplementedError):
            check(Stub)


def _cam_variant(mode):
    """A GradCAM written with one typical mistake (or none)."""

    def cam(model, layer, x, target, forward=None):
        forward = forward or model
        captured = {}
        handle = layer.register_forward_hook(lambda m, i, o: captured.__setitem__("A", o))
        was_training = model.training
        model.eval()
        try:
            out = forward(x)
            index = torch.as_tensor(target).long().expand(out.shape[0])
            y = out.sum() if mode == "all outputs" else out.gather(1, index[:, None]).sum()
            grad, = torch.autograd.grad(y, captured["A"])
            A = captured["A"].detach()
            alpha = grad.amax(dim=(2, 3), keepdim=True) if mode == "max" else grad.mean(dim=(2, 3), keepdim=True)
            m = (alpha * A).sum(1, keepdim=True)
            m = m if mode == "no relu" else F.relu(m)
            m = F.interpolate(m, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
            lo, hi = m.amin(dim=(1, 2), keepdim=True), m.amax(dim=(1, 2), keepdim=True)
            return (m - lo) / (hi - lo).clamp_min(1e-7)
        finally:
            handle.remove()
            if mode != "mode not restored":
                model.train(was_training)

    return cam


def test_grad_cam_check(nb, capsys):
    check_grad_cam(nb["grad_cam"])
    check_grad_cam(_cam_variant("right"))
    assert capsys.readouterr().out.count("GradCAM: passed") == 2
    for mode, message in (("all outputs", "differs from the known map"), ("no relu", "differs from the known map"),
                          ("mode not restored", "eval mode")):
        with pytest.raises(CheckFailed, match=message):
            check_grad_cam(_cam_variant(mode))
