"""The labs of the course: one record per lab, and the one table of points.

Templates, ``run_notebook``, the benchmark and the grader read the lab list from here, so a lab's
notebook may sit anywhere in the repository: its path is in its record.

    from helpers.course.labs import LABS, lab_named
    lab_named("cwgan").notebook_path()        # <repo>/lab8_cwgan.ipynb
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from helpers.checks.contract import CWGAN, FC, ICLEVR, MALARIA, VANILLA, GenerateContract

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Lab:
    """One lab: where its notebooks are, which checks grade it, what its ``generate`` must do."""

    name: str                       # short name: setup_lab(name), helpers/checks/<name>.py, --lab name
    notebook: str                   # the solution notebook, relative to the repository root
    template: str                   # the student template generated from it, relative to the repository root
    checks: str                     # the module with the lab's checks and its GRADED list
    contract: GenerateContract      # what generate(n) / generate(n, c) must do
    dataset: str | None             # the training set: "mnist", "fashion_mnist", "iclevr"; None for the malaria patches
    bench: bool                     # measured by helpers.course.bench

    def notebook_path(self, root: str | Path = REPO_ROOT) -> Path:
        return Path(root) / self.notebook

    def template_path(self, root: str | Path = REPO_ROOT) -> Path:
        return Path(root) / self.template

    def checks_module(self) -> ModuleType:
        """The imported checks module (``helpers.checks.<name>``)."""
        return importlib.import_module(self.checks)


LABS: list[Lab] = [
    Lab("vanilla", "lab8_vanilla.ipynb", "templates/lab8_vanilla.ipynb", "helpers.checks.vanilla", VANILLA,
        dataset="mnist", bench=True),
    Lab("cwgan", "lab8_cwgan.ipynb", "templates/lab8_cwgan.ipynb", "helpers.checks.cwgan", CWGAN,
        dataset="fashion_mnist", bench=True),
    Lab("malaria", "dcgan_malaria.ipynb", "templates/dcgan_malaria.ipynb", "helpers.checks.malaria", MALARIA,
        dataset=None, bench=True),
    # Additional labs live in extra/; their templates mirror the path under templates/.
    Lab("fc", "extra/fc_gan.ipynb", "templates/extra/fc_gan.ipynb", "helpers.checks.fc", FC,
        dataset="mnist", bench=True),
    Lab("iclevr", "extra/cgan_iclevr.ipynb", "templates/extra/cgan_iclevr.ipynb", "helpers.checks.iclevr", ICLEVR,
        dataset="iclevr", bench=True),
]

# Points of every graded check, all labs: visible checks (registered in helpers/checks/<lab>.py as GRADED),
# the generate contract ("<lab>.generate") and the hidden tests of the solution notebooks ("# hidden test <id>").
# The automatic total of a lab is the sum of its rows; nbgrader metadata is generated from this table.
POINTS: dict[str, float] = {
    # Lab 8, part 1: DCGAN on MNIST
    "vanilla.generator": 2,
    "vanilla.discriminator": 2,
    "vanilla.losses": 2,
    "vanilla.train_step": 3,
    "vanilla.generate": 2,
    "vanilla.generate_sizes": 1,            # hidden
    "vanilla.generator_latent_dim": 1,      # hidden
    "vanilla.train_step_batch": 1,          # hidden
    # Lab 8, part 2: conditional WGAN-GP on Fashion-MNIST
    "cwgan.conditioning": 1,
    "cwgan.generator": 2,
    "cwgan.critic": 2,
    "cwgan.losses": 2,
    "cwgan.gradient_penalty": 2,
    "cwgan.train_step": 3,
    "cwgan.generate": 2,
    "cwgan.generate_classes": 1,            # hidden
    "cwgan.train_step_batch": 1,            # hidden
    # Lab 3: least-squares DCGAN on malaria smears
    "malaria.generator": 2,
    "malaria.discriminator": 2,
    "malaria.losses": 2,
    "malaria.train_step": 2,
    "malaria.generate": 1,
    "malaria.head": 2,
    "malaria.stage_loss": 1,
    "malaria.train_step_multitask": 2,
    "malaria.grad_cam": 2,
    "malaria.generate_64": 1,               # hidden
    # Extra lab: a fully connected GAN on MNIST, with and without dropout in D
    "fc.generator": 2,
    "fc.discriminator": 3,
    "fc.losses": 2,
    "fc.train_step": 3,
    "fc.generate": 2,
    "fc.generator_sizes": 1,                # hidden
    "fc.discriminator_other": 1,            # hidden
    # Extra lab: a multi-label conditional GAN on i-CLEVR (SAGAN against SN and DCGAN)
    "iclevr.self_attention": 2,
    "iclevr.conditional_batchnorm": 2,
    "iclevr.generator": 2,
    "iclevr.discriminator": 3,
    "iclevr.losses": 2,
    "iclevr.train_step": 3,
    "iclevr.generate": 2,
    "iclevr.generator_64": 1,               # hidden
    "iclevr.discriminator_64": 1,           # hidden
}

# Points of the answer cells, all labs: the handout's questions, answered in markdown cells whose whole
# content is a ### BEGIN SOLUTION region, graded by hand (helpers.course.grade lists them; `grade merge`
# adds the scores). Not part of the automatic totals. The row "<lab>.answer_<name>" is the answer cell
# with id "<lab>-answer-<name>" (answer_cell_id); its points go into its nbgrader metadata.
ANSWER_POINTS: dict[str, float] = {
    "vanilla.answer_dc": 1,                 # What does "DC" in DCGAN mean?
    "vanilla.answer_latent": 1,             # What is the 100?
    "vanilla.answer_distribution": 2,       # The distribution of G's output; are all digits equally likely?
    "cwgan.answer_gan_problems": 2,         # What is tricky about the original GAN?
    "cwgan.answer_conditioning": 2,         # How does the conditioning work here?
    "cwgan.answer_business_use": 1,         # What is a business use of conditional GANs?
    "malaria.answer_checkerboard": 2,       # What causes checkerboard artifacts, and how can they be avoided?
    "malaria.answer_multitask_d": 2,        # How does D behave with the classification head?
    "malaria.answer_head_generator": 2,     # Does the classification head affect the generator?
    "malaria.answer_experiments": 2,        # What do the experiments (batch size, epochs, optimizer) show?
    "fc.answer_dropout": 2,                 # What does dropout in D change, and why?
    "fc.answer_lr": 2,                      # What does a learning rate of 0.01 do?
    "fc.answer_batch_size": 2,              # What does the batch size change?
    "fc.answer_epochs": 1,                  # How do the samples evolve over the epochs?
    "iclevr.answer_spectral_norm": 2,       # Why does spectral normalisation help the discriminator?
    "iclevr.answer_attention": 2,           # What does self-attention add for scenes of several objects?
    "iclevr.answer_condition": 2,           # How does the condition enter G and D, and why this way?
}


def answer_cell_id(answer: str) -> str:
    """The notebook cell id of an :data:`ANSWER_POINTS` row: ``"vanilla.answer_dc"`` -> ``"vanilla-answer-dc"``."""
    return answer.replace(".", "-").replace("_", "-")


def lab_named(name: str) -> Lab:
    """The lab called ``name``; ``KeyError`` listing the names when there is none."""
    for lab in LABS:
        if lab.name == name:
            return lab
    raise KeyError(f"no lab {name!r}; the labs are {', '.join(lab.name for lab in LABS)}")


def lab_names() -> list[str]:
    return [lab.name for lab in LABS]


def lab_points(name: str) -> dict[str, float]:
    """The rows of :data:`POINTS` that belong to lab ``name``."""
    return {check: points for check, points in POINTS.items() if check.split(".", 1)[0] == name}


def lab_answer_points(name: str) -> dict[str, float]:
    """The rows of :data:`ANSWER_POINTS` that belong to lab ``name``."""
    return {answer: points for answer, points in ANSWER_POINTS.items() if answer.split(".", 1)[0] == name}
