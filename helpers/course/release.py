"""The one place that pins the release Colab fetches.

The first cell of every notebook repeats these two values (it runs before the repository is
on disk, so it cannot import them); ``tests/test_env.py::test_bootstrap_cell_pins_the_release_of_helpers_release`` checks
they agree.
"""

REPO_URL = "https://github.com/gan-lab/gan-lab.git"
REPO_TAG = "v0.1.0"
