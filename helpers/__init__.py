"""GAN Lab support code: everything students do not edit.

Modules, one concern each:
    env          -- Colab/local setup, device choice, profiles, output folders
    data         -- MNIST / Fashion-MNIST as device-resident tensors, batching
    checkpoints  -- atomic, resumable, safely loaded checkpoints
    training     -- the epoch/iteration loop shared by every lab (progress, logging, resume)
    plotting     -- loss curves, image grids, weight images, saved as PNG
    sampling     -- argument checks and mode handling for ``generate``
"""

__version__ = "0.1.0"
