"""The iclevr lab's instant checks pass the notebook's own answers and fail typical wrong ones, naming what differed.

As in test_fc_checks.py, every right answer is the solution notebook's own code (loaded with
:func:`helpers.course.notebook_code.load_definitions`) and every wrong answer is built from it: its source with
one typical mistake put in, so no copy of the student code lives in the tests.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch

from helpers.checks.iclevr import (check_conditional_batchnorm, check_generate, check_hinge_losses,
                                   check_iclevr_discriminator, check_iclevr_generator, check_iclevr_train_step,
                                   check_self_attention)
from helpers.course.labs import lab_named
from helpers.course.notebook_code import load_definitions
from helpers.iclevr.data import encode_conditions
from helpers.iclevr.render import OBJECTS
from helpers.sampling import check_count, eval_mode, mark_trained, seeded_noise, to_unit_images

from conftest import check_fails as _fails, notebook_mutant

torch.set_num_threads(1)

NOTEBOOK = lab_named("iclevr").notebook_path()
NB = load_definitions(NOTEBOOK, module_name="ganlab_test_iclevr")
# a small config: the checks build every network several times
NB.cfg = replace(NB.Config(), g_width=16, d_width=8)
NB.device = torch.device("cpu")
CFG = NB.cfg


def _mutant(name: str, *edits: tuple[str, str]):
    """The notebook's class or function ``name`` with each ``(old, new)`` edit made in its source: a typical
    mistake, defined in a copy of the loaded notebook's globals under its own name (so the checks count it)."""
    return notebook_mutant(NOTEBOOK, NB, name, *edits, keep_name=True)


# ============================================================================ self-attention
def test_self_attention_correct_passes(capsys):
    check_self_attention(NB.SelfAttention)
    assert "✓ self-attention: passed" in capsys.readouterr().out


def test_self_attention_mistakes_fail():
    gamma_one = _mutant("SelfAttention", ("torch.zeros(1)", "torch.ones(1)"))
    _fails(check_self_attention, gamma_one, match="gamma starts at 1")
    softmax_queries = _mutant("SelfAttention", ("dim=-1)", "dim=1)"))
    _fails(check_self_attention, softmax_queries, match="SelfAttention(x) under fixed weights")
    no_transpose = _mutant("SelfAttention", ("o = v @ attention.transpose(1, 2)", "o = v @ attention"))
    _fails(check_self_attention, no_transpose, match="SelfAttention(x) under fixed weights")
    no_residual = _mutant("SelfAttention", ("return x + self.gamma * o", "return self.gamma * o"))
    _fails(check_self_attention, no_residual, match="with gamma = 0 SelfAttention(x) is not x")
    no_sn = _mutant("SelfAttention", ("sn(nn.Conv2d(channels, channels, 1), spectral_norm)",
                                      "nn.Conv2d(channels, channels, 1)"))
    _fails(check_self_attention, no_sn, match="no spectral norm on ['value']")
    wide = _mutant("SelfAttention", ("channels // 8", "channels // 4"))
    _fails(check_self_attention, wide, match="expected {'query'")


# ============================================================================ conditional batch norm
def test_conditional_batchnorm_correct_passes(capsys):
    check_conditional_batchnorm(NB.ConditionalBatchNorm2d)
    assert "✓ conditional batch norm: passed" in capsys.readouterr().out


def test_conditional_batchnorm_mistakes_fail():
    affine = _mutant("ConditionalBatchNorm2d", ("affine=False", "affine=True"))
    _fails(check_conditional_batchnorm, affine, match="affine=False")
    gain_zero = _mutant("ConditionalBatchNorm2d", ("nn.init.ones_(self.gain.bias)", "nn.init.zeros_(self.gain.bias)"))
    _fails(check_conditional_batchnorm, gain_zero, match="gain must start at 1")
    swapped = _mutant("ConditionalBatchNorm2d", ("self.bn(x) * self.gain(y)[:, :, None, None] + self.bias(y)",
                                                 "self.bn(x) * self.bias(y)[:, :, None, None] + self.gain(y)"))
    _fails(check_conditional_batchnorm, swapped, match="plain batch norm")
    before = _mutant("ConditionalBatchNorm2d", ("return self.bn(x) * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None]",
                                                "return self.bn(x * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None])"))
    _fails(check_conditional_batchnorm, before, match="under fixed weights")


# ============================================================================ generator
def test_generator_correct_passes(capsys):
    check_iclevr_generator(NB.Generator, CFG)
    check_iclevr_generator(NB.Generator, replace(CFG, image_size=64))
    assert "✓ generator (with and without self-attention): passed" in capsys.readouterr().out


def test_generator_mistakes_fail():
    no_tanh = _mutant("Generator", ("return torch.tanh(h)", "return h"))
    _fails(check_iclevr_generator, no_tanh, CFG, match="outside [-1, 1]")
    always_attention = _mutant("Generator", ("if cfg.self_attention else None", ""))
    _fails(check_iclevr_generator, always_attention, CFG, match="self_attention=False has 1 SelfAttention")
    attention_unused = _mutant("Generator", ("h = self.attention(h)", "pass"))
    _fails(check_iclevr_generator, attention_unused, CFG, match="it is not in forward")
    one_block_short = _mutant("Generator", ("int(math.log2(cfg.image_size)) - 2", "int(math.log2(cfg.image_size)) - 3"))
    _fails(check_iclevr_generator, one_block_short, CFG, match="expected (6, 3, 32, 32)")
    ignores_y = _mutant("Generator", ("h = up(F.relu(norm(h, y)))", "h = up(F.relu(norm(h, torch.zeros_like(y))))"),
                        ("torch.cat([z, y], dim=1)", "torch.cat([z, torch.zeros_like(y)], dim=1)"))
    _fails(check_iclevr_generator, ignores_y, CFG, match="does not depend on y")


# ============================================================================ discriminator
def test_discriminator_correct_passes(capsys):
    check_iclevr_discriminator(NB.Discriminator, CFG)
    check_iclevr_discriminator(NB.Discriminator, replace(CFG, image_size=64))
    assert "✓ discriminator (projection; spectral norm and self-attention on and off): passed" in capsys.readouterr().out


def test_discriminator_mistakes_fail():
    sn_on_convs_only = _mutant("Discriminator", ("self.linear = sn(nn.Linear(widths[-1], 1), cfg.spectral_norm)",
                                                 "self.linear = nn.Linear(widths[-1], 1)"))
    _fails(check_iclevr_discriminator, sn_on_convs_only, CFG, match="no spectral norm on ['linear']")
    sn_always = _mutant("Discriminator", ("sn(nn.Conv2d(a, b, 4, 2, 1), cfg.spectral_norm)",
                                          "sn(nn.Conv2d(a, b, 4, 2, 1), True)"))
    _fails(check_iclevr_discriminator, sn_always, CFG, match="spectral_norm=False, self_attention=False: spectral norm on")
    no_projection = _mutant("Discriminator", (" + (self.embed(y) * h).sum(dim=1)", ""))
    _fails(check_iclevr_discriminator, no_projection, CFG, match="does not depend on y")
    squashed = _mutant("Discriminator", ("(self.embed(y) * h).sum(dim=1)", "torch.tanh(self.embed(y) * h).sum(dim=1)"))
    _fails(check_iclevr_discriminator, squashed, CFG, match="not linear in the condition")
    sigmoid = _mutant("Discriminator", ("return self.linear(h).view(-1) + (self.embed(y) * h).sum(dim=1)",
                                        "return torch.sigmoid(self.linear(h).view(-1) + (self.embed(y) * h).sum(dim=1))"))
    _fails(check_iclevr_discriminator, sigmoid, CFG, match="not linear in the condition")
    keeps_2d = _mutant("Discriminator", ("self.linear(h).view(-1)", "self.linear(h)"),
                       ("(self.embed(y) * h).sum(dim=1)", "(self.embed(y) * h).sum(dim=1, keepdim=True)"))
    _fails(check_iclevr_discriminator, keeps_2d, CFG, match="expected (6,)")


def test_network_todos_not_done_raise_not_implemented():
    template = load_definitions(lab_named("iclevr").template_path(), module_name="ganlab_test_iclevr_template")
    for check, args in ((check_self_attention, (template.SelfAttention,)),
                        (check_conditional_batchnorm, (template.ConditionalBatchNorm2d,))):
        with pytest.raises(NotImplementedError):
            check(*args)


# ============================================================================ losses
def test_hinge_losses_correct_pass(capsys):
    check_hinge_losses(NB.d_loss_hinge, NB.g_loss_hinge)
    assert "✓ hinge losses: passed" in capsys.readouterr().out


def test_hinge_losses_mistakes_fail():
    wasserstein = _mutant("d_loss_hinge", ("F.relu(1.0 - score_real).mean() + F.relu(1.0 + score_fake).mean()",
                                           "score_fake.mean() - score_real.mean()"))
    _fails(check_hinge_losses, wasserstein, NB.g_loss_hinge, match="d_loss_hinge(score_real, score_fake) is")
    no_margin = _mutant("d_loss_hinge", ("F.relu(1.0 - score_real).mean() + F.relu(1.0 + score_fake).mean()",
                                         "F.relu(-score_real).mean() + F.relu(score_fake).mean()"))
    _fails(check_hinge_losses, no_margin, NB.g_loss_hinge, match="d_loss_hinge(score_real, score_fake) is")
    hinge_g = _mutant("g_loss_hinge", ("return -score_fake.mean()", "return F.relu(1.0 - score_fake).mean()"))
    _fails(check_hinge_losses, NB.d_loss_hinge, hinge_g, match="g_loss_hinge(score_fake) is")

    def swapped(score_fake, score_real):  # the arguments in the other order
        return NB.d_loss_hinge(score_real, score_fake)
    _fails(check_hinge_losses, swapped, NB.g_loss_hinge, match="d_loss_hinge")


# ============================================================================ optimizers and training step
def _batch(n=8):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, CFG.image_size, CFG.image_size, generator=gen) * 2 - 1
    y = torch.from_numpy(encode_conditions([["red cube"], ["blue sphere", "gray cube"]] * (n // 2)))
    return x, y


def test_train_step_correct_passes(capsys):
    x, y = _batch()
    check_iclevr_train_step(NB.train_step, NB.make_optimizers, NB.Generator, NB.Discriminator, CFG, x, y)
    assert "✓ train step: passed" in capsys.readouterr().out


def test_train_step_mistakes_fail():
    x, y = _batch()
    same_lr = _mutant("make_optimizers", ("lr=cfg.lr_D", "lr=cfg.lr_G"))
    _fails(check_iclevr_train_step, NB.train_step, same_lr, NB.Generator, NB.Discriminator, replace(CFG, lr_D=4e-4),
           x, y, match="opt_D has lr=")
    swapped = _mutant("make_optimizers", ("torch.optim.Adam(G.parameters()", "torch.optim.Adam(D.parameters()"))
    _fails(check_iclevr_train_step, NB.train_step, swapped, NB.Generator, NB.Discriminator, CFG, x, y,
           match="opt_G does not optimise exactly the parameters of G")
    no_detach = _mutant("train_step", ("D(x_fake.detach(), y)", "D(x_fake, y)"))
    _fails(check_iclevr_train_step, no_detach, NB.make_optimizers, NB.Generator, NB.Discriminator, CFG, x, y,
           match="computed gradients for G's weights")


# ============================================================================ generate
def _generate_of(G, *, upsample=True, validate=True, use_y=True):
    """A generate over a fresh (marked trained) G, with one switch per mistake."""
    def generate(n, objects, seed=None, generator=None):
        n = check_count(n)
        if validate:
            y = torch.from_numpy(encode_conditions(objects, n))
        else:  # one condition of names, unchecked: unknown names are skipped, duplicates and 4 objects accepted
            y = torch.zeros(n, 24)
            if isinstance(objects, np.ndarray):
                y[:] = torch.from_numpy(objects)
            for name in [] if isinstance(objects, np.ndarray) else objects:
                if name in OBJECTS:
                    y[:, OBJECTS.index(name)] = 1
        with eval_mode(G):
            x = G(seeded_noise(n, CFG.latent_dim, seed, "cpu"), y if use_y else torch.zeros_like(y))
            if upsample:
                x = torch.nn.functional.interpolate(x, size=64, mode="bilinear", align_corners=False)
        return to_unit_images(x)
    return generate


def test_generate_contract_passes_and_fails():
    torch.manual_seed(0)
    G = NB.Generator(CFG)
    mark_trained(G)
    check_generate(_generate_of(G), model=G)
    _fails(check_generate, _generate_of(G, upsample=False), model=G, match="expected (5, 3, 64, 64) float32")
    _fails(check_generate, _generate_of(G, validate=False), model=G, match="generate(2, ['pink cube']) did not raise ValueError")
    msg = _fails(check_generate, _generate_of(G, use_y=False), model=G, match="gives the same images for")
    assert "G(z, y)" in msg
    a = _generate_of(G)(3, [["gray cube"], ["red cube", "blue sphere"], ["yellow cylinder"]], seed=0)
    assert a.shape == (3, 3, 64, 64) and a.dtype == np.float32
