"""Instant checks, called in the cell right after each TODO: one module per lab.

    common   CheckFailed, the shared comparison helpers, check_train_step
    vanilla  lab8_vanilla.ipynb
    cwgan    lab8_cwgan.ipynb
    malaria  dcgan_malaria.ipynb
    fc       extra/fc_gan.ipynb (the fully connected GAN, an additional lab)
    contract what every lab's generate must do: the rules as data (GenerateContract) and one checker
    graded   how the grader calls a lab's checks (each lab module ends with GRADED, a list of GradedCheck)
    answers/ the stored expected values (generated from the solution notebooks)
"""

from helpers.checks.common import CheckFailed

__all__ = ["CheckFailed"]
