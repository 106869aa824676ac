"""The fc lab's instant checks pass the notebook's own answers and fail typical wrong ones, naming the quantity.

As in test_checks.py, every right answer is the solution notebook's own code (loaded with
:func:`helpers.course.notebook_code.load_definitions`) and every wrong answer is built from it: its source
with one typical mistake put in, so no copy of the student code lives in the tests.
"""


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.checks.fc import (check_fc_discriminator, check_fc_generator, check_fc_losses, check_fc_train_step,
                               check_generate)
from helpers.course.labs import lab_named
from helpers.course.notebook_code import load_definitions
from helpers.sampling import mark_trained

from conftest import check_fails as _fails, notebook_mutant

torch.set_num_threads(1)

NOTEBOOK = lab_named("fc").notebook_path()
FC = load_definitions(NOTEBOOK, module_name="ganlab_test_fc")
FC.cfg = FC.Config()                 # what the notebook's functions read as globals
FC.device = torch.device("cpu")


def _mutant(name: str, *edits: tuple[str, str]):
    """The notebook's class or function ``name`` with each ``(old, new)`` edit made in its source (every
    occurrence of ``old``): a typical mistake, defined in the loaded notebook under a new name."""
    return notebook_mutant(NOTEBOOK, FC, name, *edits)


# ============================================================================ generator
def test_generator_correct_passes(capsys):
    check_fc_generator(FC.Generator)
    check_fc_generator(lambda latent_dim: FC.Generator(latent_dim, hidden=32), latent_dim=16, hidden=32)
    assert "✓ generator: passed" in capsys.readouterr().out


def test_generator_mistakes_fail():
    no_tanh = _mutant("Generator", ("nn.Tanh(),", ""))
    _fails(check_fc_generator, no_tanh, match="tanh")
    relu = _mutant("Generator", ("nn.LeakyReLU(0.2)", "nn.ReLU()"))
    _fails(check_fc_generator, relu, match="LeakyReLU(0.2)")
    default_slope = _mutant("Generator", ("nn.LeakyReLU(0.2)", "nn.LeakyReLU()"))
    _fails(check_fc_generator, default_slope, match="LeakyReLU(0.2)")
    narrow = _mutant("Generator", ("hidden: int = 256", "hidden: int = 128"))
    _fails(check_fc_generator, narrow, match="linear layers are [(64, 128)")
    flat = _mutant("Generator", (".view(-1, 1, 28, 28)", ""))
    _fails(check_fc_generator, flat, match="G(z) has shape (8, 784)")


def test_generator_todo_not_done_raises_not_implemented():
    template = load_definitions(lab_named("fc").template_path(), module_name="ganlab_test_fc_template")
    with pytest.raises(NotImplementedError):
        check_fc_generator(template.Generator)
    with pytest.raises(NotImplementedError):
        check_fc_discriminator(template.Discriminator)


# ============================================================================ discriminator and dropout
class _AlwaysDropout(nn.Module):
    """Dropout that ignores the mode: F.dropout(training=True) also in eval mode."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, h):
        return F.dropout(h, self.p, training=True)


class _UnscaledDropout(nn.Module):
    """The original paper's form: drop without rescaling in training, multiply by (1 - p) at evaluation."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, h):
        if self.training:
            return h * (torch.rand_like(h) >= self.p)
        return h * (1 - self.p)


FC._AlwaysDropout, FC._UnscaledDropout = _AlwaysDropout, _UnscaledDropout


def test_discriminator_correct_passes(capsys):
    check_fc_discriminator(FC.Discriminator)
    check_fc_discriminator(lambda dropout: FC.Discriminator(hidden=32, dropout=dropout), hidden=32, dropout=0.5)
    assert "✓ discriminator (with and without dropout): passed" in capsys.readouterr().out


def test_discriminator_logit_mistakes_fail():
    sigmoid_module = _mutant("Discriminator", ("nn.Linear(hidden, 1),", "nn.Linear(hidden, 1), nn.Sigmoid(),"))
    _fails(check_fc_discriminator, sigmoid_module, match="Sigmoid")
    sigmoid_forward = _mutant("Discriminator", ("return self.net(x).view(-1)", "return torch.sigmoid(self.net(x)).view(-1)"))
    _fails(check_fc_discriminator, sigmoid_forward, match="not the last linear layer's output")
    narrow = _mutant("Discriminator", ("hidden: int = 256", "hidden: int = 128"))
    _fails(check_fc_discriminator, narrow, match="linear layers are [(784, 128)")


def test_dropout_mistakes_fail():
    missing = _mutant("Discriminator", ("nn.Dropout(dropout),", ""))
    _fails(check_fc_discriminator, missing, match="dropout is not active")
    ignored = _mutant("Discriminator", ("nn.Dropout(dropout)", "nn.Dropout(0.0)"))
    _fails(check_fc_discriminator, ignored, match="has a Dropout layer with p=0.0")
    fixed_p = _mutant("Discriminator", ("nn.Dropout(dropout)", "nn.Dropout(0.5)"))
    _fails(check_fc_discriminator, fixed_p, match="Discriminator(dropout=0.0) gives different logits")
    half_p = _mutant("Discriminator", ("nn.Dropout(dropout)", "nn.Dropout(dropout / 2)"))
    _fails(check_fc_discriminator, half_p, match="has a Dropout layer with p=0.15")
    always_on = _mutant("Discriminator", ("nn.Dropout(dropout)", "_AlwaysDropout(dropout)"))
    _fails(check_fc_discriminator, always_on, match="dropout is still active")
    unscaled = _mutant("Discriminator", ("nn.Dropout(dropout)", "_UnscaledDropout(dropout)"))
    _fails(check_fc_discriminator, unscaled, match="other logits than the same weights without dropout")
    one_layer = _mutant("Discriminator", ("nn.Dropout(dropout),\n            nn.Linear(hidden, 1)", "nn.Linear(hidden, 1)"))
    _fails(check_fc_discriminator, one_layer, match="going into linear layer 3 are zeroed")
    on_pixels = _mutant("Discriminator", ("nn.Flatten(),", "nn.Flatten(), nn.Dropout(dropout),"))
    _fails(check_fc_discriminator, on_pixels, match="drops input pixels")


# ============================================================================ losses
def test_losses_correct_pass_and_wrong_ones_fail(capsys):
    check_fc_losses(FC.d_loss_bce, FC.g_loss_bce)
    assert "✓ BCE losses: passed" in capsys.readouterr().out
    saturating = _mutant("g_loss_bce", ("torch.ones_like(logits_fake)", "torch.zeros_like(logits_fake)"))
    _fails(check_fc_losses, FC.d_loss_bce, saturating, match="g_loss_bce(logits_fake) is")
    only_real = _mutant("d_loss_bce", ("return loss_real + loss_fake", "return loss_real"))
    _fails(check_fc_losses, only_real, FC.g_loss_bce, match="d_loss_bce(logits_real, logits_fake) is")


# ============================================================================ optimizers and training step
def _batch():
    torch.manual_seed(1)
    return torch.rand(8, 1, 28, 28) * 2 - 1


def test_train_step_correct_passes(capsys):
    check_fc_train_step(FC.train_step, FC.make_optimizers, FC.Generator, FC.Discriminator, FC.cfg, _batch())
    assert "✓ train step: passed" in capsys.readouterr().out


def test_train_step_and_optimizer_mistakes_fail():
    args = (FC.Generator, FC.Discriminator, FC.cfg, _batch())
    no_detach = _mutant("train_step", ("D(x_fake.detach())", "D(x_fake)"),
                        ("loss_D.backward()", "loss_D.backward(retain_graph=True)"))
    _fails(check_fc_train_step, no_detach, FC.make_optimizers, *args, match="the D step computed gradients for G's weights")
    sgd = _mutant("make_optimizers", ("torch.optim.Adam(", "torch.optim.SGD(momentum=0.5, params="),
                  ("betas=(cfg.beta1, cfg.beta2)", "dampening=0"))
    _fails(check_fc_train_step, FC.train_step, sgd, *args, match="expected torch.optim.Adam")
    wrong_lr = _mutant("make_optimizers", ("lr=cfg.lr", "lr=1e-3"))
    _fails(check_fc_train_step, FC.train_step, wrong_lr, *args, match="lr=0.001")
    swapped = _mutant("make_optimizers", ("return opt_G, opt_D", "return opt_D, opt_G"))
    _fails(check_fc_train_step, FC.train_step, swapped, *args, match="opt_G does not optimise exactly the parameters of G")
    no_g_step = _mutant("train_step", ("    opt_G.step()\n", "\n"))
    _fails(check_fc_train_step, no_g_step, FC.make_optimizers, *args, match="never called opt_G.step()")


# ============================================================================ generate
@pytest.fixture
def trained_G():
    torch.manual_seed(0)
    G = FC.Generator(FC.cfg.latent_dim, FC.cfg.hidden)
    mark_trained(G)  # the notebook's generate refuses an untrained G
    FC.G = G
    return G


def test_generate_correct_passes(trained_G, capsys):
    check_generate(FC.generate, model=trained_G)
    assert "✓ generate: passed" in capsys.readouterr().out
    assert FC.generate(3, seed=1).shape == (3, 28, 28) and FC.generate(3, seed=1).dtype == np.float32


def test_generate_mistakes_fail(trained_G):
    unscaled = _mutant("generate", ("return to_unit_images(x)", "return x[:, 0].numpy()"))
    _fails(check_generate, unscaled, model=trained_G, match="expected [0, 1]")
    seed_ignored = _mutant("generate", ("seeded_noise(n, cfg.latent_dim, seed, device)",
                                        "seeded_noise(n, cfg.latent_dim, None, device)"))
    _fails(check_generate, seed_ignored, model=trained_G, match="different images")
    left_in_eval = _mutant("generate", ("with eval_mode(G):", "G.eval()\n    with torch.no_grad():"))
    _fails(check_generate, left_in_eval, model=trained_G, match="left G in eval mode")
    no_validation = _mutant("generate", ("n = check_count(n)", "n = int(n)"))
    _fails(check_generate, no_validation, model=trained_G, match="did not raise")
