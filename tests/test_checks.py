"""The instant checks pass correct answers and fail typical wrong ones, naming the quantity.

Each wrong answer below is a mistake students really make; the test asserts that the check raises
``CheckFailed`` (never just prints) and that the message names what differed.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from types import SimpleNamespace

from helpers.checks import common, cwgan, malaria, vanilla

checks = SimpleNamespace(**{**vars(common), **vars(vanilla), **vars(cwgan), **vars(malaria)})
from helpers.checks import CheckFailed
from helpers.sampling import check_count, seeded_noise, to_unit_images

torch.set_num_threads(1)


def _fails(check, *args, match: str, **kwargs) -> str:
    with pytest.raises(CheckFailed) as info:
        check(*args, **kwargs)
    msg = str(info.value)
    assert match in msg, msg
    assert "Hint:" in msg, msg
    return msg


# ============================================================================ vanilla: generator
class Generator(nn.Module):
    """The solution's generator, with switches for typical mistakes."""

    def __init__(self, latent_dim=100, width=64, tanh=True, out_kernel=4, batchnorm=True, flat=False):
        super().__init__()
        self.width, self.flat = width, flat
        norm = nn.BatchNorm2d if batchnorm else (lambda c: nn.Identity())
        self.project = nn.Sequential(nn.Linear(latent_dim, 2 * width * 7 * 7, bias=False),
                                     nn.BatchNorm1d(2 * width * 7 * 7) if batchnorm else nn.Identity(), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False), norm(width), nn.ReLU(),
            nn.ConvTranspose2d(width, 1, out_kernel, 2, 1),
            *([nn.Tanh()] if tanh else []),
        )

    def forward(self, z):
        x = self.net(self.project(z).view(-1, 2 * self.width, 7, 7))
        return x.flatten(1) if self.flat else x


def test_generator_correct_passes(capsys):
    checks.check_generator(Generator)
    checks.check_generator(lambda latent_dim: Generator(latent_dim, width=8))
    assert "✓ generator: passed" in capsys.readouterr().out


@pytest.mark.parametrize("width", [64, 8])
def test_generator_without_tanh_fails(width):
    _fails(checks.check_generator, lambda d: Generator(d, width=width, tanh=False), match="outside [-1, 1]")


def test_generator_wrong_output_shape_fails():
    _fails(checks.check_generator, lambda d: Generator(d, out_kernel=3), match="G(z) has shape (8, 1, 27, 27)")
    _fails(checks.check_generator, lambda d: Generator(d, flat=True), match="G(z) has shape (8, 784)")


def test_generator_without_batchnorm_fails():
    _fails(checks.check_generator, lambda d: Generator(d, batchnorm=False), match="no BatchNorm")


def test_generator_todo_not_done_raises_not_implemented():
    class Stub(nn.Module):
        def __init__(self, latent_dim=100):
            super().__init__()
            raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        checks.check_generator(Stub)


# ============================================================================ vanilla: discriminator
class Discriminator(nn.Module):
    """The solution's discriminator, with switches for typical mistakes."""

    def __init__(self, width=64, sigmoid_module=False, sigmoid_in_forward=False, flatten=True, relu=False,
                 input_bn=False):
        super().__init__()
        self.sigmoid_in_forward, self.flatten = sigmoid_in_forward, flatten
        act = (lambda: nn.ReLU()) if relu else (lambda: nn.LeakyReLU(0.2))
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1), *([nn.BatchNorm2d(width)] if input_bn else []), act(),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), act(),
            nn.Conv2d(2 * width, 4 * width, 3, 2, 1, bias=False), nn.BatchNorm2d(4 * width), act(),
            nn.Flatten(), nn.Linear(4 * width * 4 * 4, 1),
            *([nn.Sigmoid()] if sigmoid_module else []),
        )

    def forward(self, x):
        out = self.net(x)
        if self.sigmoid_in_forward:
            out = torch.sigmoid(out)
        return out.view(-1) if self.flatten else out

    def probability(self, x):
        return torch.sigmoid(self(x))


def test_discriminator_correct_passes(capsys):
    checks.check_discriminator(Discriminator)
    checks.check_discriminator(lambda: Discriminator(width=8))
    assert "✓ discriminator: passed" in capsys.readouterr().out


def test_discriminator_with_sigmoid_module_fails():
    _fails(checks.check_discriminator, lambda: Discriminator(sigmoid_module=True), match="Sigmoid")


def test_discriminator_with_sigmoid_in_forward_fails():
    """torch.sigmoid in forward is no module, but D then returns probabilities, not logits."""
    _fails(checks.check_discriminator, lambda: Discriminator(sigmoid_in_forward=True), match="logits")


def test_discriminator_probability_applying_sigmoid_twice_fails():
    class Twice(Discriminator):
        def probability(self, x):
            return torch.sigmoid(torch.sigmoid(self(x)))

    _fails(checks.check_discriminator, Twice, match="D.probability(x)")


def test_discriminator_wrong_output_shape_fails():
    _fails(checks.check_discriminator, lambda: Discriminator(flatten=False), match="D(x) has shape (8, 1)")


def test_discriminator_dcgan_rules():
    _fails(checks.check_discriminator, lambda: Discriminator(relu=True), match="LeakyReLU(0.2)")
    _fails(checks.check_discriminator, lambda: Discriminator(input_bn=True), match="BatchNorm on its input layer")


# ============================================================================ vanilla: BCE losses
def d_loss_bce(logits_real, logits_fake):
    return (F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
            + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))


def g_loss_bce(logits_fake):
    return F.binary_cross_entropy_with_logits(logits_fake, torch.ones_like(logits_fake))


def test_bce_losses_correct_pass(capsys):
    checks.check_vanilla_losses(d_loss_bce, g_loss_bce)
    # the same losses written out by hand with logsigmoid are just as right
    checks.check_vanilla_losses(lambda r, f: -F.logsigmoid(r).mean() - F.logsigmoid(-f).mean(),
                                lambda f: -F.logsigmoid(f).mean())
    assert "✓ BCE losses: passed" in capsys.readouterr().out


def test_bce_losses_wrong_sign_fails():
    _fails(checks.check_vanilla_losses, lambda r, f: -d_loss_bce(r, f), g_loss_bce, match="d_loss_bce(logits_real, logits_fake) is")
    _fails(checks.check_vanilla_losses, d_loss_bce, lambda f: -g_loss_bce(f), match="g_loss_bce(logits_fake) is")


def test_bce_losses_sigmoid_applied_twice_fails():
    def d_twice(r, f):  # BCE-with-logits on probabilities: the sigmoid is applied twice
        return d_loss_bce(torch.sigmoid(r), torch.sigmoid(f))

    _fails(checks.check_vanilla_losses, d_twice, g_loss_bce, match="d_loss_bce(logits_real, logits_fake) is")
    _fails(checks.check_vanilla_losses, d_loss_bce, lambda f: g_loss_bce(torch.sigmoid(f)), match="g_loss_bce(logits_fake) is")


def test_bce_losses_sigmoid_then_bceloss_fails():
    """Sigmoid + BCELoss agrees on small logits but saturates on large ones (log 0 clamped to -100)."""
    def d_probs(r, f):
        return (F.binary_cross_entropy(torch.sigmoid(r), torch.ones_like(r))
                + F.binary_cross_entropy(torch.sigmoid(f), torch.zeros_like(f)))

    def g_probs(f):
        return F.binary_cross_entropy(torch.sigmoid(f), torch.ones_like(f))

    _fails(checks.check_vanilla_losses, d_probs, g_loss_bce, match="d_loss_bce on large logits")
    _fails(checks.check_vanilla_losses, d_loss_bce, g_probs, match="g_loss_bce on large logits")


def test_bce_losses_labels_swapped_fails():
    def d_swapped(r, f):
        return d_loss_bce(f, r)

    _fails(checks.check_vanilla_losses, d_swapped, g_loss_bce, match="d_loss_bce(logits_real, logits_fake) is")
    # the saturating generator loss (fakes against label 0) is the classic swap in J_G
    _fails(checks.check_vanilla_losses, d_loss_bce,
           lambda f: F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)), match="g_loss_bce(logits_fake) is")


def test_bce_losses_shape_and_graph_mistakes_fail():
    _fails(checks.check_vanilla_losses,
           lambda r, f: F.binary_cross_entropy_with_logits(r, torch.ones_like(r), reduction="none"), g_loss_bce,
           match="should be a single number")
    _fails(checks.check_vanilla_losses, lambda r, f: d_loss_bce(r, f).item(), g_loss_bce, match="gradients")
    _fails(checks.check_vanilla_losses, d_loss_bce, lambda f: g_loss_bce(f).detach(), match="gradients")


# ============================================================================ vanilla: generate
_G = Generator(100, width=8).eval()


def _generate(n, seed=None, *, scale=True, dtype=np.float32, use_seed=True, validate=True, channel=False):
    if validate:
        n = check_count(n)
    with torch.no_grad():
        z = seeded_noise(n, 100, seed if use_seed else None, "cpu")
        x = _G(z)
    out = to_unit_images(x) if scale else x[:, 0].numpy()
    if channel:
        out = out[:, None]
    return out.astype(dtype)


def test_generate_correct_passes(capsys):
    checks.check_generate(_generate, shape=(28, 28))
    assert "✓ generate: passed" in capsys.readouterr().out


def test_generate_wrong_answers_fail():
    _fails(checks.check_generate, lambda n, seed=None: _generate(n, seed, scale=False), match="expected [0, 1]")
    _fails(checks.check_generate, lambda n, seed=None: _generate(n, seed, dtype=np.float64), match="dtype float64")
    _fails(checks.check_generate, lambda n, seed=None: _generate(n, seed, channel=True), match="shape (5, 1, 28, 28)")
    _fails(checks.check_generate, lambda n, seed=None: torch.from_numpy(_generate(n, seed)), match="numpy array")
    _fails(checks.check_generate, lambda n, seed=None: _generate(n, seed, use_seed=False), match="different images")
    _fails(checks.check_generate, lambda n, seed=None: _generate(n, 0), match="seed")  # the seed is ignored
    _fails(checks.check_generate, lambda n, seed=None: _generate(max(1, int(n)) if not isinstance(n, str) else 1, seed,
                                                                 validate=False), match="did not raise")


# ============================================================================ train step (every lab)
def _make_train_step(G, D, opt_G, opt_D, detach=True, fresh_z_for_g=False):
    def train_step(x_real):
        z = torch.randn(x_real.shape[0], 100)
        x_fake = G(z)
        loss_D = d_loss_bce(D(x_real), D(x_fake.detach() if detach else x_fake))
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        if fresh_z_for_g:
            x_fake = G(torch.randn(x_real.shape[0], 100))
        loss_G = g_loss_bce(D(x_fake))
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()
        return {"loss_G": loss_G.detach(), "loss_D": loss_D.detach()}
    return train_step


def _networks():
    torch.manual_seed(0)
    G, D = Generator(100, width=8), Discriminator(width=8)
    return G, D, torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999)), torch.optim.Adam(D.parameters(), 2e-4)


def test_train_step_correct_passes_and_changes_nothing(capsys):
    G, D, opt_G, opt_D = _networks()
    before = [t.clone() for t in [*G.state_dict().values(), *D.state_dict().values()]]
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    rng = torch.random.get_rng_state()
    checks.check_train_step(_make_train_step(G, D, opt_G, opt_D), G, D, opt_G, opt_D, x)
    assert "✓ train step: passed" in capsys.readouterr().out
    after = [*G.state_dict().values(), *D.state_dict().values()]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert torch.equal(rng, torch.random.get_rng_state()) and opt_G.state_dict()["state"] == {}


def test_train_step_missing_detach_fails():
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    G, D, opt_G, opt_D = _networks()
    # the usual outcome: G's graph was freed by loss_D.backward(), and the G step crashes
    _fails(checks.check_train_step, _make_train_step(G, D, opt_G, opt_D, detach=False), G, D, opt_G, opt_D, x,
           match="the D step computed gradients for G's weights")
    # with fresh noise for the G step nothing crashes, but loss_D still reached G
    _fails(checks.check_train_step, _make_train_step(G, D, opt_G, opt_D, detach=False, fresh_z_for_g=True),
           G, D, opt_G, opt_D, x, match="the D step computed gradients for G's weights")


def test_train_step_wrong_optimizers_fail():
    G, D, opt_G, opt_D = _networks()
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    swapped = torch.optim.Adam(D.parameters())
    _fails(checks.check_train_step, _make_train_step(G, D, swapped, opt_D), G, D, swapped, opt_D, x,
           match="opt_G does not optimise exactly the parameters of G")
    both = torch.optim.Adam([*G.parameters(), *D.parameters()])
    _fails(checks.check_train_step, _make_train_step(G, D, opt_G, both), G, D, opt_G, both, x, match="opt_D")


# ============================================================================ cwgan
def _require_cwgan_checks():
    if not (checks.CHECK_DATA / "cwgan.json").is_file() or not hasattr(checks, "check_gradient_penalty"):
        pytest.fail("helpers/checks/answers/cwgan.json or the cwgan checks are missing")


def get_grad_function(critic, x_hat, y):
    x_hat = x_hat.detach().requires_grad_(True)
    scores = critic(x_hat, y)
    (grad,) = torch.autograd.grad(scores, x_hat, torch.ones_like(scores), create_graph=True)
    return grad


def _penalty(critic, x_real, x_fake, y, lambda_gp=10.0, epsilon=None, *, at="interpolates", norm="per-image"):
    if epsilon is None:
        epsilon = torch.rand(x_real.shape[0], 1, 1, 1)
    x_hat = {"interpolates": epsilon * x_real + (1 - epsilon) * x_fake, "real": x_real}[at]
    grad = get_grad_function(critic, x_hat, y)
    if norm == "per-image":
        norms = grad.flatten(1).norm(2, dim=1)
    elif norm == "dim1":
        norms = grad.norm(2, dim=1)  # over the channel axis only: (B, 28, 28)
    else:
        norms = grad.flatten(1).norm(2, dim=0)  # across the batch
    return lambda_gp * ((norms - 1) ** 2).mean()


def test_cwgan_gradient_penalty_correct_passes(capsys):
    _require_cwgan_checks()
    checks.check_gradient_penalty(_penalty)
    assert "✓ gradient penalty: passed" in capsys.readouterr().out


def test_cwgan_gradient_penalty_wrong_answers_fail():
    _require_cwgan_checks()
    name = "get_gradient_regularisation(...) with lambda_gp = 10"
    _fails(checks.check_gradient_penalty, lambda *a, **k: _penalty(*a, **k, at="real"), match=name)
    _fails(checks.check_gradient_penalty, lambda *a, **k: _penalty(*a, **k, norm="dim1"), match=name)
    _fails(checks.check_gradient_penalty, lambda *a, **k: _penalty(*a, **k, norm="batch"), match=name)
    _fails(checks.check_gradient_penalty, lambda *a, **k: _penalty(*a, **k).detach(), match="gradient")
    _fails(checks.check_gradient_penalty, lambda *a, lambda_gp=10.0, **k: _penalty(*a, **k), match="lambda_gp=1.0")


def test_cwgan_wasserstein_losses():
    _require_cwgan_checks()
    g_ok = lambda s_fake: -s_fake.mean()  # noqa: E731
    d_ok = lambda s_fake, s_real: s_fake.mean() - s_real.mean()  # noqa: E731
    checks.check_wgan_losses(g_ok, d_ok)
    _fails(checks.check_wgan_losses, lambda s: s.mean(), d_ok, match="get_WLoss_generator(score_fake) is")
    _fails(checks.check_wgan_losses, g_ok, lambda f, r: r.mean() - f.mean(), match="get_WLoss_discriminator(score_fake, score_real) is")
    _fails(checks.check_wgan_losses, g_ok, lambda f, r: torch.sigmoid(f).mean() - torch.sigmoid(r).mean(),
           match="get_WLoss_discriminator(score_fake, score_real) is")
    _fails(checks.check_wgan_losses, g_ok, lambda f, r: (f - r).mean(), match="4 fake and 6 real")


def test_cwgan_loss_returning_a_float_fails():
    _require_cwgan_checks()
    _fails(checks.check_wgan_losses, lambda s: -s.mean(), lambda f, r: (f.mean() - r.mean()).item(), match="gradients")


class _CwganGenerator(nn.Module):
    def __init__(self, latent_dim=100, width=8, conditioned=True):
        super().__init__()
        self.width, self.conditioned = width, conditioned
        self.project = nn.Sequential(nn.Linear(latent_dim + 10, 2 * width * 49), nn.BatchNorm1d(2 * width * 49), nn.ReLU())
        self.net = nn.Sequential(nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
                                 nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Tanh())

    def forward(self, z, y):
        label = F.one_hot(y, 10).float() if self.conditioned else torch.zeros(len(z), 10)
        return self.net(self.project(torch.cat([z, label], 1)).view(-1, 2 * self.width, 7, 7))


class _Critic(nn.Module):
    def __init__(self, width=8, norm="layer", sigmoid=False):
        super().__init__()
        self.sigmoid = sigmoid
        self.net = nn.Sequential(
            nn.Conv2d(11, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.LayerNorm([2 * width, 7, 7]) if norm == "layer" else nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * width * 49, 1))

    def forward(self, x, y):
        planes = F.one_hot(y, 10).float().view(-1, 10, 1, 1).expand(-1, 10, 28, 28)
        out = self.net(torch.cat([x, planes], 1)).view(-1)
        return torch.sigmoid(out) if self.sigmoid else out


def test_cwgan_networks_and_conditioning():
    _require_cwgan_checks()
    checks.check_cwgan_generator(_CwganGenerator)
    _fails(checks.check_cwgan_generator, lambda d: _CwganGenerator(d, conditioned=False), match="class 2 and class 7")
    checks.check_critic(_Critic)
    _fails(checks.check_critic, lambda: _Critic(norm="batch"), match="BatchNorm")

    def g_in(z, y):
        return torch.cat([z, F.one_hot(y, 10).float()], 1)

    def d_in(x, y):
        return torch.cat([x, F.one_hot(y, 10).float().view(-1, 10, 1, 1).expand(-1, 10, 28, 28)], 1)

    checks.check_conditioning(g_in, d_in)
    _fails(checks.check_conditioning, lambda z, y: torch.cat([F.one_hot(y, 10).float(), z], 1), d_in,
           match="generator_input(z, y)[:, :100]")
    _fails(checks.check_conditioning, g_in, lambda x, y: torch.cat([d_in(x, y)[:, 1:], x], 1), match="critic_input(x, y)[:, 0]")


# ============================================================================ malaria
def _require_malaria_checks():
    if not (checks.CHECK_DATA / "malaria.json").is_file() or not hasattr(checks, "check_lsgan_losses"):
        pytest.fail("helpers/checks/answers/malaria.json or the malaria checks are missing")


def test_malaria_losses():
    _require_malaria_checks()
    d_ok = lambda r, f: 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f ** 2).mean()  # noqa: E731
    g_ok = lambda f: ((f - 1) ** 2).mean()  # noqa: E731
    checks.check_lsgan_losses(d_ok, g_ok)
    _fails(checks.check_lsgan_losses, lambda r, f: ((r - 1) ** 2).mean() + (f ** 2).mean(), g_ok, match="lsgan_d_loss")
    _fails(checks.check_lsgan_losses, lambda r, f: d_ok(torch.sigmoid(r), torch.sigmoid(f)), g_ok, match="lsgan_d_loss")
    _fails(checks.check_lsgan_losses, d_ok, lambda f: (f ** 2).mean(), match="lsgan_g_loss")
    checks.check_stage_loss(F.binary_cross_entropy_with_logits)
    _fails(checks.check_stage_loss, lambda l, t: F.binary_cross_entropy_with_logits(torch.sigmoid(l), t),
           match="stage_loss_bce")
