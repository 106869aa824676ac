"""Building blocks shared by more than one lab (the architectures themselves live in the notebooks)."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al., 2016): conv and linear weights ~ N(0, 0.02),
    BatchNorm scales ~ N(1, 0.02), biases 0. Use as ``model.apply(dcgan_init)``."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
