"""Instant checks, called in the cell right after each TODO: one module per lab.

    common   CheckFailed, the shared comparison helpers, check_train_step
    vanilla  lab8_vanilla.ipynb
    cwgan    lab8_cwgan.ipynb
    malaria  dcgan_malaria.ipynb
    answers/ the stored expected values (generated from the solution notebooks)
"""

from helpers.checks.common import CheckFailed

__all__ = ["CheckFailed"]
