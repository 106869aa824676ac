"""The cWGAN-GP lab's three loss functions, taken from the notebook itself, against hand computations.

The notebook's definitions are loaded with :func:`helpers.course.notebook_code.load_definitions` (its
functions and classes only: no training, no checks), so these tests check exactly the code in
lab8_cwgan.ipynb.
"""

import math

import pytest
import torch
from torch import nn

from helpers.course.notebook_code import load_definitions

from conftest import REPO_ROOT

NOTEBOOK = REPO_ROOT / "lab8_cwgan.ipynb"
LAMBDA = 10.0


@pytest.fixture(scope="module")
def nb_ns() -> dict:
    """The notebook's names: get_WLoss_generator, get_WLoss_discriminator, get_grad_function, get_gradient_regularisation..."""
    return vars(load_definitions(NOTEBOOK))


class LinearCritic(nn.Module):
    """D(x, y) = w . x + b_y: its input gradient is w everywhere, so ||grad|| = ||w|| in closed form."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.arange(10, dtype=torch.float32))

    def forward(self, x, y):
        return (x * self.w).flatten(1).sum(1) + self.b[y]


class QuadraticCritic(nn.Module):
    """D(x, y) = a/2 ||x||^2 (+ 0 * y): gradient a * x, so the penalty depends on where it is taken.

    Records what it was called with, to see the interpolates and the labels.
    """

    def __init__(self, a: float):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))
        self.calls = []

    def forward(self, x, y):
        self.calls.append((x.detach().clone(), y.clone()))
        return 0.5 * self.a * (x ** 2).flatten(1).sum(1)


def test_generator_loss_is_minus_the_mean_fake_score(nb_ns):
    scores = [0.5, -2.0, 3.25, 1.0, -0.75]
    got = nb_ns["get_WLoss_generator"](torch.tensor(scores, requires_grad=True))
    assert got.shape == ()
    assert got.item() == pytest.approx(-sum(scores) / len(scores), abs=1e-6)
    got.backward()  # carries gradients


def test_critic_loss_is_mean_fake_minus_mean_real_with_each_batch_averaged_alone(nb_ns):
    fake, real = [0.5, -2.0, 3.25], [1.0, -0.75, 2.0, 4.0, 0.0, 1.5]
    got = nb_ns["get_WLoss_discriminator"](torch.tensor(fake), torch.tensor(real))
    assert got.shape == ()
    assert got.item() == pytest.approx(sum(fake) / 3 - sum(real) / 6, abs=1e-6)
    # the argument order is (score_fake, score_real): swapping flips the sign
    swapped = nb_ns["get_WLoss_discriminator"](torch.tensor(real), torch.tensor(fake))
    assert swapped.item() == pytest.approx(-got.item(), abs=1e-6)


@pytest.mark.parametrize("norm_w", [0.25, 1.0, 3.0])
def test_penalty_of_a_linear_critic_is_lambda_times_norm_w_minus_one_squared(nb_ns, norm_w):
    torch.manual_seed(0)
    w = torch.randn(1, 28, 28)
    w = w / w.norm() * norm_w
    critic = LinearCritic(w)
    x_real, x_fake = torch.rand(6, 1, 28, 28) * 2 - 1, torch.rand(6, 1, 28, 28) * 2 - 1
    y = torch.tensor([0, 1, 2, 7, 8, 9])
    gp = nb_ns["get_gradient_regularisation"](critic, x_real, x_fake, y)  # random epsilon, lambda = 10 by default
    assert gp.shape == ()
    assert gp.item() == pytest.approx(LAMBDA * (norm_w - 1) ** 2, rel=1e-5, abs=1e-6)
    # lambda is an argument
    gp1 = nb_ns["get_gradient_regularisation"](critic, x_real, x_fake, y, lambda_gp=1.0)
    assert gp1.item() == pytest.approx((norm_w - 1) ** 2, rel=1e-5, abs=1e-7)
    # create_graph=True: the penalty's gradient reaches the critic's weights,
    # d/dw lambda (||w|| - 1)^2 = 2 lambda (||w|| - 1) w / ||w||
    gp.backward()
    want = 2 * LAMBDA * (norm_w - 1) * w / norm_w
    torch.testing.assert_close(critic.w.grad, want, rtol=1e-4, atol=1e-6)


def test_penalty_is_taken_at_per_sample_interpolates_with_the_given_labels(nb_ns):
    torch.manual_seed(1)
    a = 0.05
    critic = QuadraticCritic(a)
    x_real, x_fake = torch.rand(8, 1, 28, 28) * 2 - 1, torch.rand(8, 1, 28, 28) * 2 - 1
    y = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    gp = nb_ns["get_gradient_regularisation"](critic, x_real, x_fake, y)
    (x_hat, y_seen), = critic.calls
    assert torch.equal(y_seen, y)
    # x_hat_i = eps_i x_real_i + (1 - eps_i) x_fake_i with one eps_i in [0, 1] per image
    d = (x_real - x_fake).flatten(1)
    eps = ((x_hat.flatten(1) - x_fake.flatten(1)) * d).sum(1) / (d * d).sum(1)
    torch.testing.assert_close(x_hat, eps.view(-1, 1, 1, 1) * x_real + (1 - eps.view(-1, 1, 1, 1)) * x_fake,
                               rtol=1e-5, atol=1e-5)
    assert (eps >= 0).all() and (eps <= 1).all() and eps.std() > 0.05, eps
    # ||grad D(x_hat)|| = a ||x_hat_i||, by hand in float64
    norms = [a * math.sqrt(sum(v * v for v in row)) for row in x_hat.flatten(1).double().tolist()]
    want = LAMBDA * sum((n - 1) ** 2 for n in norms) / len(norms)
    assert gp.item() == pytest.approx(want, rel=1e-5)


def test_penalty_uses_the_epsilon_it_is_given(nb_ns):
    critic = QuadraticCritic(0.1)
    x_real, x_fake = torch.ones(3, 1, 28, 28), torch.zeros(3, 1, 28, 28)
    eps = torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1, 1)
    gp = nb_ns["get_gradient_regularisation"](critic, x_real, x_fake, torch.zeros(3, dtype=torch.int64), epsilon=eps)
    # x_hat_i = eps_i * ones, so ||grad|| = 0.1 * eps_i * 28
    want = LAMBDA * sum((0.1 * e * 28 - 1) ** 2 for e in (0.0, 0.5, 1.0)) / 3
    assert gp.item() == pytest.approx(want, rel=1e-5)


def test_grad_function_returns_per_image_input_gradients_kept_in_the_graph(nb_ns):
    critic = QuadraticCritic(0.3)
    x_hat = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    grad = nb_ns["get_grad_function"](critic, x_hat, torch.zeros(4, dtype=torch.int64))
    assert grad.shape == x_hat.shape
    torch.testing.assert_close(grad, 0.3 * x_hat)
    assert grad.requires_grad  # create_graph=True
