"""GAN Lab support code: everything students do not edit.

Modules, one concern each:
    env               Colab/local setup, device choice, profiles, output and checkpoint folders
    release           the pinned release the notebooks' Colab bootstrap fetches
    data              MNIST / Fashion-MNIST as device-resident tensors, batching
    malaria           M5 (Pascal VOC) and IML-Malaria (JSON) loaders, cell-centred patches
    checkpoints       atomic, resumable, safely loaded checkpoints
    training          the epoch/iteration loop shared by every lab (progress, logging, resume)
    sampling          argument checks and mode handling behind every ``generate``
    models            shared building blocks (DCGAN init, parameter counts)
    malaria_models    the malaria lab's architectures, for the stand-alone ``malaria_test.py``
    plotting          loss curves, image grids, weight images, saved as PNG
    gradcam           showing GradCAM maps (the hook-based GradCAM itself is lab code)
    classifiers       the small MNIST / Fashion-MNIST classifiers the metrics use
    train_classifier  the script that trains them (``python -m helpers.train_classifier``)
    metrics           classifier-feature Frechet distance, class balance, conditional accuracy, ...
    malaria_metrics   multi-label metrics, patch statistics, galleries for the malaria lab
    experiments       the malaria lab's one-call grid of training runs
    checks            instant checks called after every TODO
    templates         student templates from the solution notebooks (``python -m helpers.templates``)
    grade             headless grading of a submission (``python -m helpers.grade``)
    share_checkpoints which checkpoint files to share (``python -m helpers.share_checkpoints``)
    run_notebook      run a notebook headlessly (``python -m helpers.run_notebook``)
    bench             speed and quality benchmark (``python -m helpers.bench``)
"""

__version__ = "0.1.0"
