"""A procedural stand-in for i-CLEVR: scenes of 1 to 3 shaded objects on a grey floor.

The course's i-CLEVR images (rendered with Blender for the CLEVR generator) are handed out by the
course and are not public; only their label files are. This module draws a stand-in for each label
entry: the same objects (3 shapes x 8 colours), each at a random place on a grey floor, lit from the
upper left, with a soft shadow, in a simple perspective (far objects are higher and smaller). It is
NOT the original data set: the lab's numbers on it are not comparable with the course's reports.

Every image depends only on its own entry (file name and objects), never on which other entries are
rendered with it, so the first k images of a subset equal those of the full set. As in i-CLEVR,
``..._0.png``, ``..._1.png`` and ``..._2.png`` show one scene: each adds one object and keeps the
earlier objects where they were (the scene's seed comes from the name without its ``_k`` suffix).

Geometry (all in "world" units on the floor, before the perspective):
    the floor spans x in [-2.0, 2.0] (left to right) and z in [-2.5, 2.5] (far to near);
    the camera looks down at ``ELEVATION_DEG``; an object's footprint radius is 0.8 (large) or 0.55 (small).
Images are drawn at twice the size and averaged 2 x 2 (anti-aliasing).
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    # The CLEVR generator's colours (properties.json), in objects.json's order.
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
SHAPES = ("cube", "sphere", "cylinder")
# objects.json: indices 0-7 "<colour> cube", 8-15 spheres, 16-23 cylinders, colours in COLOURS' order.
OBJECTS: tuple[str, ...] = tuple(f"{c} {s}" for s in SHAPES for c in COLOURS)

ELEVATION_DEG = 35.0
_X_RANGE = 2.0
_Z_RANGE = 2.5
_SIZES = (0.8, 0.55)          # footprint radius: large, small
_LIGHT = np.array([-0.55, 0.75, 0.45])
_LIGHT = _LIGHT / np.linalg.norm(_LIGHT)
_SUPERSAMPLE = 2


@dataclass(frozen=True)
class Placement:
    """Where one object stands and how it looks.

    Attributes:
        name: "<colour> <shape>", one of :data:`OBJECTS`.
        x, z: the centre of its footprint on the floor (world units; z grows toward the camera).
        radius: footprint radius (world units).
        angle: rotation about the vertical axis (radians; cubes only).
        shiny: metal (a sharp highlight) instead of rubber.
    """

    name: str
    x: float
    z: float
    radius: float
    angle: float
    shiny: bool


def scene_seed(name: str) -> int:
    """A 32-bit seed from an entry's file name without its ``_k.png`` suffix (one seed per scene)."""
    stem = re.sub(r"_\d+(\.png)?$", "", name)
    return zlib.crc32(stem.encode("utf-8"))


def _screen(x: float, z: float, size: int) -> tuple[float, float, float]:
    """Floor point -> (column, row, scale) on a ``size`` x ``size`` image; far points are higher and smaller."""
    t = (z + _Z_RANGE) / (2 * _Z_RANGE)            # 0 far .. 1 near
    scale = 0.62 + 0.38 * t
    unit = 0.18 * size * scale                     # pixels per world unit at this depth
    col = size / 2 + x * unit
    row = size * (0.36 + 0.52 * t)
    return col, row, unit


def place_objects(objects: Sequence[str], seed: int, size: int = 64) -> list[Placement]:
    """Random, non-overlapping places for ``objects`` (in order: object k's place does not depend on later ones).

    Args:
        objects: object names, each one of :data:`OBJECTS`.
        seed: the scene's seed.
        size: image size used to test overlap on screen.

    Returns:
        One :class:`Placement` per object, in the order given.
    """
    rng = np.random.default_rng(seed)
    placed: list[Placement] = []
    for name in objects:
        if name not in OBJECTS:
            raise ValueError(f"unknown object {name!r}: expected one of the 24 names of objects.json")
        radius = _SIZES[int(rng.integers(2))]
        angle = float(rng.uniform(0, math.pi / 2))
        shiny = bool(rng.random() < 0.4)
        best, best_gap = None, -math.inf
        for _ in range(200):
            x = float(rng.uniform(-_X_RANGE, _X_RANGE))
            z = float(rng.uniform(-_Z_RANGE, _Z_RANGE))
            gap = _screen_gap(x, z, radius, placed, size)
            if gap > best_gap:
                best, best_gap = (x, z), gap
            if gap > 0:
                break
        placed.append(Placement(name, best[0], best[1], radius, angle, shiny))
    return placed


def _screen_gap(x: float, z: float, radius: float, placed: Sequence[Placement], size: int) -> float:
    """Smallest distance (pixels) between the new object's screen disc and the others' (< 0: they overlap)."""
    gaps = [math.inf]
    col, row, unit = _screen(x, z, size)
    r = 1.3 * radius * unit
    for p in placed:
        c2, r2, u2 = _screen(p.x, p.z, size)
        rr = 1.3 * p.radius * u2
        # centres of the bounding discs sit one radius above the floor point
        gaps.append(math.hypot(col - c2, (row - r) - (r2 - rr)) - r - rr - 1.0)
        # world footprints must not intersect either
        gaps.append(math.hypot(x - p.x, z - p.z) - radius - p.radius - 0.15)
    return min(gaps)


# ----------------------------------------------------------------------------- drawing
def _floor(size: int, rng: np.random.Generator) -> np.ndarray:
    """The grey floor: brighter in the middle, a little darker far away; (size, size, 3) floats in [0, 1]."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = float(rng.uniform(0.42, 0.52))
    shade = base + 0.08 * rows - 0.10 * ((cols - 0.5) ** 2 + (rows - 0.6) ** 2)
    return np.repeat(shade[..., None], 3, axis=2)


def _shade(normals: np.ndarray, shiny: bool) -> tuple[np.ndarray, np.ndarray]:
    """Diffuse factor and specular highlight for unit normals (..., 3) (x right, y up, z to the camera)."""
    lambert = np.clip(normals @ _LIGHT, 0.0, 1.0)
    diffuse = 0.38 + 0.62 * lambert
    view = np.array([0.0, math.sin(math.radians(ELEVATION_DEG)), math.cos(math.radians(ELEVATION_DEG))])
    half = _LIGHT + view
    half = half / np.linalg.norm(half)
    spec = np.clip(normals @ half, 0.0, 1.0) ** (40 if shiny else 8) * (0.75 if shiny else 0.12)
    return diffuse, spec


def _paint(img: np.ndarray, mask: np.ndarray, colour: np.ndarray, diffuse: np.ndarray, spec: np.ndarray) -> None:
    """Paint ``colour`` * diffuse + spec where ``mask`` holds (in place)."""
    rgb = colour[None, :] * diffuse[mask][:, None] + spec[mask][:, None]
    img[mask] = np.clip(rgb, 0.0, 1.0)


def _project(points: np.ndarray) -> np.ndarray:
    """World offsets (n, 3) (x right, y up, z to the camera) -> screen offsets (n, 2) in world units (right, down)."""
    phi = math.radians(ELEVATION_DEG)
    return np.stack([points[:, 0], -points[:, 1] * math.cos(phi) + points[:, 2] * math.sin(phi)], axis=1)


def _in_convex(cols: np.ndarray, rows: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Boolean mask of the pixels inside a convex polygon (k, 2) of (col, row) corners, in either winding."""
    inside_pos = np.ones(cols.shape, dtype=bool)
    inside_neg = np.ones(cols.shape, dtype=bool)
    for i in range(len(poly)):
        (c0, r0), (c1, r1) = poly[i], poly[(i + 1) % len(poly)]
        cross = (c1 - c0) * (rows - r0) - (r1 - r0) * (cols - c0)
        inside_pos &= cross >= 0
        inside_neg &= cross <= 0
    return inside_pos | inside_neg


def _draw_shadow(img: np.ndarray, p: Placement, size: int) -> None:
    col, row, unit = _screen(p.x, p.z, size)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    # the light comes from the upper left: the shadow falls to the right, a little toward the camera
    cc, rc = col + 0.9 * p.radius * unit, row + 0.15 * p.radius * unit
    d = ((cols - cc) / (1.6 * p.radius * unit)) ** 2 + ((rows - rc) / (0.75 * p.radius * unit)) ** 2
    img *= (1.0 - 0.35 * np.exp(-2.5 * d))[..., None]


def _draw_sphere(img, cols, rows, p: Placement, colour, col, row, unit) -> None:
    r = p.radius * unit
    cy = row - r                                     # the sphere rests on the floor point
    dx, dy = (cols - col) / r, (rows - cy) / r
    mask = dx ** 2 + dy ** 2 <= 1.0
    nz = np.sqrt(np.clip(1.0 - dx ** 2 - dy ** 2, 0.0, 1.0))
    # screen offsets (right, down) -> a normal in the camera frame, then back to world axes
    phi = math.radians(ELEVATION_DEG)
    up = np.array([0.0, math.cos(phi), -math.sin(phi)])
    view = np.array([0.0, math.sin(phi), math.cos(phi)])
    normals = dx[..., None] * np.array([1.0, 0.0, 0.0]) - dy[..., None] * up + nz[..., None] * view
    diffuse, spec = _shade(normals, p.shiny)
    _paint(img, mask, colour, diffuse, spec)


def _draw_cube(img, cols, rows, p: Placement, colour, col, row, unit) -> None:
    a = 0.8 * p.radius                                # half the edge (world units)
    ca, sa = math.cos(p.angle), math.sin(p.angle)
    rot = np.array([[ca, 0.0, sa], [0.0, 1.0, 0.0], [-sa, 0.0, ca]])
    corners = np.array([[x, y, z] for x in (-a, a) for y in (0.0, 2 * a) for z in (-a, a)]) @ rot.T
    faces = {  # corner indices (x, y, z bits: 4 x + 2 y + z) and the face's normal before rotation
        (1, 0, 0): (4, 5, 7, 6), (-1, 0, 0): (0, 1, 3, 2), (0, 1, 0): (2, 3, 7, 6),
        (0, 0, 1): (1, 3, 7, 5), (0, 0, -1): (0, 2, 6, 4),
    }
    phi = math.radians(ELEVATION_DEG)
    view = np.array([0.0, math.sin(phi), math.cos(phi)])
    screen = _project(corners) * unit + np.array([col, row])
    for normal, idx in faces.items():
        n = rot @ np.array(normal, dtype=float)
        if n @ view <= 1e-6:
            continue                                  # a face turned away from the camera
        mask = _in_convex(cols, rows, screen[list(idx)])
        diffuse, spec = _shade(np.broadcast_to(n, cols.shape + (3,)), p.shiny)
        _paint(img, mask, colour, diffuse, spec * 0.5)


def _draw_cylinder(img, cols, rows, p: Placement, colour, col, row, unit) -> None:
    phi = math.radians(ELEVATION_DEG)
    r = 0.8 * p.radius * unit                         # pixels
    height = 1.6 * p.radius * unit * math.cos(phi)    # the side's height on screen
    squash = math.sin(phi)                             # a floor circle is an ellipse r x r*squash
    top = row - height
    dx = (cols - col) / r
    inside_x = np.abs(dx) <= 1.0
    # the side: between the two ellipses' centre lines, plus the near half of the bottom ellipse
    bottom_edge = row + r * squash * np.sqrt(np.clip(1.0 - dx ** 2, 0.0, 1.0))
    side = inside_x & (rows >= top) & (rows <= bottom_edge)
    nx = np.clip(dx, -1.0, 1.0)
    side_normals = np.stack([nx, np.zeros_like(nx), np.sqrt(np.clip(1.0 - nx ** 2, 0.0, 1.0))], axis=-1)
    diffuse, spec = _shade(side_normals, p.shiny)
    _paint(img, side, colour, diffuse, spec)
    cap = dx ** 2 + ((rows - top) / (r * squash)) ** 2 <= 1.0
    diffuse, spec = _shade(np.broadcast_to(np.array([0.0, 1.0, 0.0]), cols.shape + (3,)), p.shiny)
    _paint(img, cap, colour, diffuse, spec)


_DRAW = {"sphere": _draw_sphere, "cube": _draw_cube, "cylinder": _draw_cylinder}


def render_scene(objects: Sequence[str], seed: int, size: int = 64) -> np.ndarray:
    """Draw one scene.

    Args:
        objects: 1 to 3 distinct object names of :data:`OBJECTS` (more are drawn too; the lab uses <= 3).
        seed: the scene's seed (:func:`scene_seed` for a train.json entry); the same seed and objects give
            the same image, and a scene with one more object keeps the earlier ones in place.
        size: the image's height and width in pixels.

    Returns:
        A ``(size, size, 3)`` uint8 RGB image.
    """
    big = size * _SUPERSAMPLE
    placements = place_objects(objects, seed, size)
    rng = np.random.default_rng([seed, 7])            # the floor's own stream: same floor for _0, _1, _2
    img = _floor(big, rng)
    for p in placements:
        _draw_shadow(img, p, big)
    # far objects first, so nearer ones cover them
    for p in sorted(placements, key=lambda q: q.z):
        col, row, unit = _screen(p.x, p.z, big)
        reach = int(2.2 * p.radius * unit) + 3
        r0, r1 = max(0, int(row) - 2 * reach), min(big, int(row) + reach)
        c0, c1 = max(0, int(col) - reach), min(big, int(col) + reach)
        if r0 >= r1 or c0 >= c1:
            continue
        rows, cols = np.mgrid[r0:r1, c0:c1].astype(np.float32) + 0.5
        colour_name, shape = p.name.split(" ")
        colour = np.array(COLOURS[colour_name], dtype=np.float32) / 255.0
        view = img[r0:r1, c0:c1]
        _DRAW[shape](view, cols, rows, p, colour, col, row, unit)
    small = img.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.round(np.clip(small, 0.0, 1.0) * 255).astype(np.uint8)


def render_entries(entries: Sequence[tuple[str, Sequence[str]]], size: int = 64) -> np.ndarray:
    """Draw train.json entries ``(file name, objects)``; returns ``(n, size, size, 3)`` uint8."""
    out = np.empty((len(entries), size, size, 3), dtype=np.uint8)
    for i, (name, objects) in enumerate(entries):
        out[i] = render_scene(objects, scene_seed(name), size)
    return out
