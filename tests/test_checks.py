"""The instant checks pass the notebooks' own answers and fail typical wrong ones, naming the quantity.

Every right answer here is the solution notebook's own code, loaded with
:func:`helpers.course.notebook_code.load_definitions`; every wrong answer is built from it (a subclass,
a wrapper that perturbs its output, or its source with one typical mistake put in), so no copy of the
student code lives in the tests. Each test asserts that the check raises ``CheckFailed`` (never just
prints) and that the message names what differed.
"""


import numpy as np
import pytest
import torch
from torch import nn

from types import SimpleNamespace

from helpers.checks import common, cwgan, malaria, vanilla
from helpers.course.notebook_code import load_definitions

from conftest import REPO_ROOT, check_fails as _fails, notebook_mutant

checks = SimpleNamespace(**{**vars(common), **vars(vanilla), **vars(cwgan), **vars(malaria)})
from helpers.sampling import check_count, seeded_noise, to_unit_images

torch.set_num_threads(1)

VANILLA_NB = REPO_ROOT / "lab8_vanilla.ipynb"
CWGAN_NB = REPO_ROOT / "lab8_cwgan.ipynb"
MALARIA_NB = REPO_ROOT / "dcgan_malaria.ipynb"
VANILLA = load_definitions(VANILLA_NB)
CWGAN = load_definitions(CWGAN_NB)
Generator = VANILLA.Generator  # the notebook's generator, also what the generate tests below sample from


def _mutant(path, module, name: str, *edits: tuple[str, str]):
    """The notebook's function ``name`` with each ``(old, new)`` edit (each ``old`` exactly once): a typical mistake."""
    return notebook_mutant(path, module, name, *edits, once=True)


def _replace_modules(model: nn.Module, kind: type, make) -> nn.Module:
    """Replace every submodule of type ``kind`` by ``make(old_module)``; returns ``model``."""
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, kind):
                setattr(parent, child_name, make(child))
    return model


# ============================================================================ vanilla: generator
def test_generator_correct_passes(capsys):
    checks.check_generator(VANILLA.Generator)
    checks.check_generator(lambda latent_dim: VANILLA.Generator(latent_dim, width=8))
    assert "✓ generator: passed" in capsys.readouterr().out


@pytest.mark.parametrize("width", [32, 8])
def test_generator_without_tanh_fails(width):
    def no_tanh(latent_dim):
        return _replace_modules(VANILLA.Generator(latent_dim, width=width), nn.Tanh, lambda m: nn.Identity())

    _fails(checks.check_generator, no_tanh, match="outside [-1, 1]")


def test_generator_wrong_output_shape_fails():
    class Cropped(VANILLA.Generator):
        def forward(self, z):
            return super().forward(z)[..., :27, :27]

    class Flat(VANILLA.Generator):
        def forward(self, z):
            return super().forward(z).flatten(1)

    _fails(checks.check_generator, Cropped, match="G(z) has shape (8, 1, 27, 27)")
    _fails(checks.check_generator, Flat, match="G(z) has shape (8, 784)")


def test_generator_without_batchnorm_fails():
    def no_batchnorm(latent_dim):
        G = VANILLA.Generator(latent_dim, width=8)
        return _replace_modules(G, (nn.BatchNorm1d, nn.BatchNorm2d), lambda m: nn.Identity())

    _fails(checks.check_generator, no_batchnorm, match="no BatchNorm")


def test_generator_todo_not_done_raises_not_implemented():
    class Stub(nn.Module):
        def __init__(self, latent_dim=100):
            super().__init__()
            raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        checks.check_generator(Stub)


# ============================================================================ vanilla: discriminator
def test_discriminator_correct_passes(capsys):
    checks.check_discriminator(VANILLA.Discriminator)
    checks.check_discriminator(lambda: VANILLA.Discriminator(width=8))
    assert "✓ discriminator: passed" in capsys.readouterr().out


def test_discriminator_with_sigmoid_module_fails():
    class WithSigmoid(VANILLA.Discriminator):
        def __init__(self):
            super().__init__(width=8)
            self.squash = nn.Sigmoid()

        def forward(self, x):
            return self.squash(super().forward(x))

    _fails(checks.check_discriminator, WithSigmoid, match="Sigmoid")


def test_discriminator_with_sigmoid_in_forward_fails():
    """torch.sigmoid in forward is no module, but D then returns probabilities, not logits."""
    class SigmoidInForward(VANILLA.Discriminator):
        def forward(self, x):
            return torch.sigmoid(super().forward(x))

    _fails(checks.check_discriminator, lambda: SigmoidInForward(width=8), match="logits")


def test_discriminator_probability_applying_sigmoid_twice_fails():
    class Twice(VANILLA.Discriminator):
        def probability(self, x):
            return torch.sigmoid(torch.sigmoid(self(x)))

    _fails(checks.check_discriminator, lambda: Twice(width=8), match="D.probability(x)")


def test_discriminator_wrong_output_shape_fails():
    class Column(VANILLA.Discriminator):
        def forward(self, x):
            return super().forward(x).view(-1, 1)

    _fails(checks.check_discriminator, lambda: Column(width=8), match="D(x) has shape (8, 1)")


def test_discriminator_dcgan_rules():
    def relu(width=8):
        return _replace_modules(VANILLA.Discriminator(width), nn.LeakyReLU, lambda m: nn.ReLU())

    def input_batchnorm(width=8):
        D = VANILLA.Discriminator(width)
        first = next(m for m in D.modules() if isinstance(m, nn.Conv2d))
        return _replace_modules(D, nn.Conv2d, lambda m: nn.Sequential(m, nn.BatchNorm2d(m.out_channels)) if m is first else m)

    _fails(checks.check_discriminator, relu, match="LeakyReLU(0.2)")
    _fails(checks.check_discriminator, input_batchnorm, match="BatchNorm on its input layer")


# ============================================================================ vanilla: BCE losses
def test_bce_losses_correct_pass(capsys):
    checks.check_vanilla_losses(VANILLA.d_loss_bce, VANILLA.g_loss_bce)
    assert "✓ BCE losses: passed" in capsys.readouterr().out


def test_bce_losses_are_called_by_keyword_with_the_notebooks_parameter_names():
    """A loss with the right formula but renamed or swapped parameters fails, naming the TODO's signature."""
    def d_swapped_parameters(logits_fake, logits_real):
        return VANILLA.d_loss_bce(logits_real, logits_fake)

    def g_renamed(fake):
        return VANILLA.g_loss_bce(fake)

    _fails(checks.check_vanilla_losses, d_swapped_parameters, VANILLA.g_loss_bce,
           match="the TODO asks for d_loss_bce(logits_real, logits_fake)")
    _fails(checks.check_vanilla_losses, VANILLA.d_loss_bce, g_renamed, match="the TODO asks for g_loss_bce(logits_fake)")


def test_bce_losses_wrong_sign_fails():
    def d_negated(logits_real, logits_fake):
        return -VANILLA.d_loss_bce(logits_real, logits_fake)

    def g_negated(logits_fake):
        return -VANILLA.g_loss_bce(logits_fake)

    _fails(checks.check_vanilla_losses, d_negated, VANILLA.g_loss_bce, match="d_loss_bce(logits_real, logits_fake) is")
    _fails(checks.check_vanilla_losses, VANILLA.d_loss_bce, g_negated, match="g_loss_bce(logits_fake) is")


def test_bce_losses_sigmoid_applied_twice_fails():
    def d_twice(logits_real, logits_fake):  # BCE-with-logits on probabilities: the sigmoid is applied twice
        return VANILLA.d_loss_bce(torch.sigmoid(logits_real), torch.sigmoid(logits_fake))

    def g_twice(logits_fake):
        return VANILLA.g_loss_bce(torch.sigmoid(logits_fake))

    _fails(checks.check_vanilla_losses, d_twice, VANILLA.g_loss_bce, match="d_loss_bce(logits_real, logits_fake) is")
    _fails(checks.check_vanilla_losses, VANILLA.d_loss_bce, g_twice, match="g_loss_bce(logits_fake) is")


def test_bce_losses_sigmoid_then_bceloss_fails():
    """Sigmoid + BCELoss agrees on small logits but saturates on large ones (log 0 clamped to -100)."""
    d_probs = _mutant(VANILLA_NB, VANILLA, "d_loss_bce",
                      ("F.binary_cross_entropy_with_logits(logits_real,", "F.binary_cross_entropy(torch.sigmoid(logits_real),"),
                      ("F.binary_cross_entropy_with_logits(logits_fake,", "F.binary_cross_entropy(torch.sigmoid(logits_fake),"))
    g_probs = _mutant(VANILLA_NB, VANILLA, "g_loss_bce",
                      ("F.binary_cross_entropy_with_logits(logits_fake,", "F.binary_cross_entropy(torch.sigmoid(logits_fake),"))
    _fails(checks.check_vanilla_losses, d_probs, VANILLA.g_loss_bce, match="d_loss_bce on large logits")
    _fails(checks.check_vanilla_losses, VANILLA.d_loss_bce, g_probs, match="g_loss_bce on large logits")


def test_bce_losses_labels_swapped_fails():
    def d_labels_swapped(logits_real, logits_fake):
        return VANILLA.d_loss_bce(logits_fake, logits_real)

    def g_saturating(logits_fake):  # the classic swap in J_G: BCE of the fakes against label 0 = BCE(-logits, 1)
        return VANILLA.g_loss_bce(-logits_fake)

    _fails(checks.check_vanilla_losses, d_labels_swapped, VANILLA.g_loss_bce, match="d_loss_bce(logits_real, logits_fake) is")
    _fails(checks.check_vanilla_losses, VANILLA.d_loss_bce, g_saturating, match="g_loss_bce(logits_fake) is")


def test_bce_losses_shape_and_graph_mistakes_fail():
    def d_per_image(logits_real, logits_fake):
        return VANILLA.d_loss_bce(logits_real, logits_fake) * torch.ones_like(logits_real)

    def d_number(logits_real, logits_fake):
        return VANILLA.d_loss_bce(logits_real, logits_fake).item()

    def g_detached(logits_fake):
        return VANILLA.g_loss_bce(logits_fake).detach()

    _fails(checks.check_vanilla_losses, d_per_image, VANILLA.g_loss_bce, match="should be a single number")
    _fails(checks.check_vanilla_losses, d_number, VANILLA.g_loss_bce, match="gradients")
    _fails(checks.check_vanilla_losses, VANILLA.d_loss_bce, g_detached, match="gradients")


# ============================================================================ vanilla: generate
# A fixed draw of the notebook's generator whose raw images take negative values: about one random draw in
# three gives all-positive images, and the range test below could then not fail.
torch.manual_seed(0)
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
def _vanilla_networks(**globals_):
    """The notebook's G, D and optimizers, set as the notebook's globals so its own train_step runs on them."""
    torch.manual_seed(0)
    G, D = VANILLA.Generator(100, width=8), VANILLA.Discriminator(width=8)
    opt_G = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    names = {"G": G, "D": D, "opt_G": opt_G, "opt_D": opt_D, "device": torch.device("cpu"),
             "cfg": SimpleNamespace(latent_dim=100), **globals_}
    for name, value in names.items():
        setattr(VANILLA, name, value)
    return names["G"], names["D"], names["opt_G"], names["opt_D"]


def test_train_step_correct_passes_and_changes_nothing(capsys):
    G, D, opt_G, opt_D = _vanilla_networks()
    before = [t.clone() for t in [*G.state_dict().values(), *D.state_dict().values()]]
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    rng = torch.random.get_rng_state()
    checks.check_train_step(VANILLA.train_step, G, D, opt_G, opt_D, x)
    assert "✓ train step: passed" in capsys.readouterr().out
    after = [*G.state_dict().values(), *D.state_dict().values()]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert torch.equal(rng, torch.random.get_rng_state()) and opt_G.state_dict()["state"] == {}


def test_train_step_missing_detach_fails():
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    G, D, opt_G, opt_D = _vanilla_networks()
    # the usual outcome: G's graph was freed by loss_D.backward(), and the G step crashes
    no_detach = _mutant(VANILLA_NB, VANILLA, "train_step", ("D(x_fake.detach())", "D(x_fake)"))
    _fails(checks.check_train_step, no_detach, G, D, opt_G, opt_D, x, match="the D step computed gradients for G's weights")
    # with the graph kept for the G step nothing crashes, but loss_D still reached G
    no_detach_kept = _mutant(VANILLA_NB, VANILLA, "train_step", ("D(x_fake.detach())", "D(x_fake)"),
                             ("loss_D.backward()", "loss_D.backward(retain_graph=True)"))
    _fails(checks.check_train_step, no_detach_kept, G, D, opt_G, opt_D, x, match="the D step computed gradients for G's weights")


def test_train_step_wrong_optimizers_fail():
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    G, D, _, opt_D = _vanilla_networks()
    swapped = torch.optim.Adam(D.parameters())
    _vanilla_networks(G=G, D=D, opt_G=swapped, opt_D=opt_D)
    _fails(checks.check_train_step, VANILLA.train_step, G, D, swapped, opt_D, x,
           match="opt_G does not optimise exactly the parameters of G")
    opt_G = torch.optim.Adam(G.parameters())
    both = torch.optim.Adam([*G.parameters(), *D.parameters()])
    _vanilla_networks(G=G, D=D, opt_G=opt_G, opt_D=both)
    _fails(checks.check_train_step, VANILLA.train_step, G, D, opt_G, both, x, match="opt_D")
# ============================================================================ cwgan
def _require_cwgan_checks():
    if not (checks.CHECK_DATA / "cwgan.json").is_file() or not hasattr(checks, "check_gradient_penalty"):
        pytest.fail("helpers/checks/answers/cwgan.json or the cwgan checks are missing")


def test_cwgan_gradient_penalty_correct_passes(capsys):
    _require_cwgan_checks()
    checks.check_gradient_penalty(CWGAN.get_gradient_regularisation)
    assert "✓ gradient penalty: passed" in capsys.readouterr().out


def test_cwgan_gradient_penalty_wrong_answers_fail():
    _require_cwgan_checks()
    gp = CWGAN.get_gradient_regularisation
    name = "get_gradient_regularisation(...) with lambda_gp = 10"

    def at_real_images(critic, x_real, x_fake, y, lambda_gp=10.0, epsilon=None):  # the published mistake
        return gp(critic, x_real, x_fake, y, lambda_gp, epsilon=torch.ones_like(epsilon))

    def detached(critic, x_real, x_fake, y, lambda_gp=10.0, epsilon=None):
        return gp(critic, x_real, x_fake, y, lambda_gp, epsilon).detach()

    norm_line = "grad.flatten(1).norm(2, dim=1)"
    over_channels = _mutant(CWGAN_NB, CWGAN, "get_gradient_regularisation", (norm_line, "grad.norm(2, dim=1)"))
    over_batch = _mutant(CWGAN_NB, CWGAN, "get_gradient_regularisation", (norm_line, "grad.flatten(1).norm(2, dim=0)"))
    fixed_lambda = _mutant(CWGAN_NB, CWGAN, "get_gradient_regularisation", ("return lambda_gp * ", "return 10.0 * "))
    _fails(checks.check_gradient_penalty, at_real_images, match=name)
    _fails(checks.check_gradient_penalty, over_channels, match=name)
    _fails(checks.check_gradient_penalty, over_batch, match=name)
    _fails(checks.check_gradient_penalty, detached, match="gradient")
    _fails(checks.check_gradient_penalty, fixed_lambda, match="lambda_gp=1.0")


def test_cwgan_wasserstein_losses():
    _require_cwgan_checks()
    d_ok, g_ok = CWGAN.get_WLoss_discriminator, CWGAN.get_WLoss_generator
    checks.check_wgan_losses(d_ok, g_ok)

    def g_negated(score_fake):
        return -g_ok(score_fake)

    def d_real_minus_fake(score_fake, score_real):
        return d_ok(score_real, score_fake)

    def d_on_probabilities(score_fake, score_real):
        return d_ok(torch.sigmoid(score_fake), torch.sigmoid(score_real))

    d_mean_of_differences = _mutant(CWGAN_NB, CWGAN, "get_WLoss_discriminator",
                                    ("score_fake.mean() - score_real.mean()", "(score_fake - score_real).mean()"))
    _fails(checks.check_wgan_losses, d_ok, g_negated, match="get_WLoss_generator(score_fake) is")
    _fails(checks.check_wgan_losses, d_real_minus_fake, g_ok, match="get_WLoss_discriminator(score_fake, score_real) is")
    _fails(checks.check_wgan_losses, d_on_probabilities, g_ok, match="get_WLoss_discriminator(score_fake, score_real) is")
    _fails(checks.check_wgan_losses, d_mean_of_differences, g_ok, match="4 fake and 6 real")


def test_cwgan_losses_keep_the_handouts_signature():
    """get_WLoss_discriminator takes (score_fake, score_real): the handout's order, kept, and checked by name."""
    _require_cwgan_checks()

    def d_real_first(score_real, score_fake):  # the order of the other labs, not of this handout
        return CWGAN.get_WLoss_discriminator(score_fake, score_real)

    _fails(checks.check_wgan_losses, d_real_first, CWGAN.get_WLoss_generator,
           match="the TODO asks for get_WLoss_discriminator(score_fake, score_real)")
    # the two losses passed in the wrong order to the check
    _fails(checks.check_wgan_losses, CWGAN.get_WLoss_generator, CWGAN.get_WLoss_discriminator,
           match="the TODO asks for get_WLoss")


def test_cwgan_loss_returning_a_float_fails():
    _require_cwgan_checks()

    def d_number(score_fake, score_real):
        return CWGAN.get_WLoss_discriminator(score_fake, score_real).item()

    _fails(checks.check_wgan_losses, d_number, CWGAN.get_WLoss_generator, match="gradients")


def test_cwgan_networks_and_conditioning():
    _require_cwgan_checks()

    class Unconditioned(CWGAN.Generator):
        def forward(self, z, y):
            return super().forward(z, torch.zeros_like(y))  # every image drawn as class 0

    def critic_with_batchnorm():
        return _replace_modules(CWGAN.Critic(width=8), nn.LayerNorm, lambda m: nn.BatchNorm2d(m.normalized_shape[0]))

    checks.check_cwgan_generator(lambda d: CWGAN.Generator(d, width=8))
    _fails(checks.check_cwgan_generator, lambda d: Unconditioned(d, width=8), match="class 2 and class 7")
    checks.check_critic(lambda: CWGAN.Critic(width=8))
    _fails(checks.check_critic, critic_with_batchnorm, match="BatchNorm")

    g_in, d_in = CWGAN.generator_input, CWGAN.critic_input
    checks.check_conditioning(g_in, d_in)
    _fails(checks.check_conditioning, lambda z, y: torch.roll(g_in(z, y), shifts=10, dims=1), d_in,  # label first
           match="generator_input(z, y)[:, :100]")
    _fails(checks.check_conditioning, g_in, lambda x, y: torch.cat([d_in(x, y)[:, 1:], x], 1), match="critic_input(x, y)[:, 0]")


# ============================================================================ malaria
@pytest.fixture(scope="module")
def malaria_nb():
    if not (checks.CHECK_DATA / "malaria.json").is_file() or not hasattr(checks, "check_lsgan_losses"):
        pytest.fail("helpers/checks/answers/malaria.json or the malaria checks are missing")
    return load_definitions(MALARIA_NB)


def test_malaria_losses(malaria_nb):
    d_ok, g_ok, stage_ok = malaria_nb.lsgan_d_loss, malaria_nb.lsgan_g_loss, malaria_nb.stage_loss_bce
    checks.check_lsgan_losses(d_ok, g_ok)
    checks.check_stage_loss(stage_ok)

    def d_without_half(score_real, score_fake):
        return 2 * d_ok(score_real, score_fake)

    def d_on_probabilities(score_real, score_fake):
        return d_ok(torch.sigmoid(score_real), torch.sigmoid(score_fake))

    def g_target_zero(score_fake):  # (D(G(z)) - 0)^2: the fakes pulled to the fake label
        return g_ok(score_fake + 1)

    def d_fake_first(score_fake, score_real):
        return d_ok(score_real, score_fake)

    def stage_sigmoid_twice(logits_stage, targets):
        return stage_ok(torch.sigmoid(logits_stage), targets)

    _fails(checks.check_lsgan_losses, d_without_half, g_ok, match="lsgan_d_loss(score_real, score_fake) is")
    _fails(checks.check_lsgan_losses, d_on_probabilities, g_ok, match="lsgan_d_loss(score_real, score_fake) is")
    _fails(checks.check_lsgan_losses, d_ok, g_target_zero, match="lsgan_g_loss(score_fake) is")
    _fails(checks.check_lsgan_losses, d_fake_first, g_ok, match="the TODO asks for lsgan_d_loss(score_real, score_fake)")
    _fails(checks.check_stage_loss, stage_sigmoid_twice, match="stage_loss_bce(logits_stage, targets) is")


# ============================================================================ README's table of losses
def test_readme_loss_table_matches_the_notebooks(malaria_nb):
    """Each row's function exists in its lab's notebook with exactly the parameters listed, in that order."""
    import inspect

    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## Losses\n"):]
    section = section[:section.index("\n## ")]
    notebooks = {"vanilla": VANILLA, "cWGAN-GP": CWGAN, "malaria": malaria_nb}
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == 8, rows
    # what students receive declares the same parameters (the checks call the losses by these names)
    templates = {lab: load_definitions(REPO_ROOT / "templates" / name, module_name=f"ganlab_template_{name[:-6]}")
                 for lab, name in (("vanilla", "lab8_vanilla.ipynb"), ("cWGAN-GP", "lab8_cwgan.ipynb"),
                                   ("malaria", "dcgan_malaria.ipynb"))}
    for lab, function, arguments, _formula in rows:
        lab, function, arguments = lab.strip("| "), function.strip("`"), arguments.strip("`").split(", ")
        for where in (notebooks, templates):
            assert list(inspect.signature(getattr(where[lab], function)).parameters) == arguments, (lab, function)
