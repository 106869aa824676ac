import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from helpers.plotting import figure_image, plot_image_grid  # noqa: E402


def test_a_large_photo_grid_is_shown_as_a_smaller_jpeg_and_a_line_plot_stays_png():
    rng = np.random.default_rng(0)
    coarse = rng.random((64, 3, 8, 8)).astype(np.float32)   # smooth colour blobs, like smear patches
    images = np.clip(np.kron(coarse, np.ones((1, 1, 4, 4), np.float32)) + rng.normal(0, 0.03, (64, 3, 32, 32)), 0, 1)
    grid = plot_image_grid(images.astype(np.float32), title="patches", size=6.0)
    data, kind = figure_image(grid)
    png = io.BytesIO()
    grid.savefig(png, format="png", bbox_inches="tight")
    assert kind == "jpeg" and len(data) < 0.8 * len(png.getvalue())
    assert Image.open(io.BytesIO(data)).size == Image.open(io.BytesIO(png.getvalue())).size
    plt.close(grid)

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1, 0, 1])
    data, kind = figure_image(fig)
    assert kind == "png" and data.startswith(b"\x89PNG")
    assert figure_image(fig, png_limit=10)[1] in ("png", "jpeg")  # over the limit: whichever is smaller
    plt.close(fig)
