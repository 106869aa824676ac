"""GAN Lab support code: everything students do not edit.

The folders say who owns the code.

Shared runtime (every lab imports these):
    env               the GANLAB_* settings (read only here), Colab/local setup, device, profiles, folders
    data              MNIST / Fashion-MNIST as device-resident tensors, batching
    checkpoints       atomic, resumable, safely loaded checkpoints
    training          the epoch/iteration loop shared by every lab (progress, logging, resume), EMA
    sampling          argument checks and mode handling behind every ``generate``
    models            shared building blocks (DCGAN init, parameter counts)
    plotting          loss curves, image grids, weight images, saved as PNG

Measurement:
    classifiers       the small MNIST / Fashion-MNIST classifiers the metrics use
    train_classifier  the script that trains them (``python -m helpers.train_classifier``)
    metrics           classifier-feature Frechet distance, class balance, conditional accuracy, ...

One lab's code:
    malaria/          Lab 3: data readers and patches, model save/load, metrics, experiments, GradCAM plots

Checks (called after every TODO):
    checks/           one module per lab, the shared comparison helpers, the stored answers

Course tooling (instructors):
    course/           the lab registry and points (labs), templates, grading (grade, grade_runner), the
                      benchmark, running notebooks headlessly, the release
"""

__version__ = "0.1.0"
