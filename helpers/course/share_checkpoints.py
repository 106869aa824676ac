"""Which checkpoint files to share from Google Drive, and whether ``checkpoint_links.txt`` is filled in.

    python -m helpers.course.share_checkpoints            # in Colab (after the setup cell) or locally
    python -m helpers.course.share_checkpoints --root DIR # checkpoints elsewhere

The course asks for one link per lab, for the vanilla and the cWGAN lab. A lab run in the full
profile keeps its checkpoints in ``<checkpoint root>/<lab>/`` (see :func:`helpers.env.setup_lab`):
``MyDrive/gan-lab/<lab>`` in Colab, ``checkpoints/<lab>`` locally, or ``$GANLAB_CHECKPOINTS/<lab>``.
The files are ``last.pt`` (always) and ``best.pt`` (when the lab's training tracks a score).
Checkpoints of the smoke and quick profiles (``<lab>-smoke``, ``<lab>-quick``) are not the ones to share.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from helpers.checkpoints import BEST, LAST
from helpers.env import checkpoint_root, drive_root

REPO_ROOT = Path(__file__).resolve().parents[2]
LINKS_FILE = REPO_ROOT / "checkpoint_links.txt"
SHARED_LABS = ("vanilla", "cwgan")  # the two labs whose checkpoints the course asks for
PLACEHOLDER = "PASTE-YOUR-LINK-HERE"
_DRIVE_LINK = re.compile(r"^https://drive\.google\.com/\S+$")


@dataclass
class LabFiles:
    """The checkpoint files of one lab's full-profile run."""

    lab: str            # "vanilla" or "cwgan"
    folder: Path        # <checkpoint root>/<lab>
    present: list[Path]  # files found, to share
    missing: list[str]   # expected names that are not there


def checkpoint_files(root: str | Path | None = None, labs: tuple[str, ...] = SHARED_LABS) -> list[LabFiles]:
    """The full-profile checkpoint files of each lab under ``root`` (default: :func:`checkpoint_root`).

    Args:
        root: the checkpoint root; default ``$GANLAB_CHECKPOINTS``, ``MyDrive/gan-lab`` in Colab,
            else ``./checkpoints``.
        labs: the labs to list.

    Returns:
        One :class:`LabFiles` per lab.
    """
    root = Path(root) if root is not None else checkpoint_root()
    out = []
    for lab in labs:
        folder = root / lab
        present = [folder / name for name in (LAST, BEST) if (folder / name).is_file()]
        missing = [name for name in (LAST, BEST) if not (folder / name).is_file()]
        out.append(LabFiles(lab, folder, present, missing))
    return out


def read_links(path: str | Path = LINKS_FILE) -> dict[str, str]:
    """``{lab: link}`` from ``checkpoint_links.txt`` (comments and blank lines skipped)."""
    links = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            links[key.strip()] = value.strip()
    return links


def link_problems(links: dict[str, str], labs: tuple[str, ...] = SHARED_LABS) -> list[str]:
    """What is wrong with the links: a lab missing, a placeholder left, not a Google Drive link."""
    problems = []
    for lab in labs:
        link = links.get(lab, "")
        if not link or link == PLACEHOLDER:
            problems.append(f"{lab}: no link yet (replace {PLACEHOLDER})")
        elif not _DRIVE_LINK.match(link):
            problems.append(f"{lab}: {link!r} is not a Google Drive link (https://drive.google.com/...)")
    return problems


def report(root: str | Path | None = None, links_file: str | Path = LINKS_FILE) -> str:
    """The text ``python -m helpers.course.share_checkpoints`` prints."""
    lines = []
    for item in checkpoint_files(root):
        lines.append(f"{item.lab}: share the folder {item.folder}")
        drive = drive_root() / item.lab
        if item.folder != drive:
            lines.append(f"    (in Google Drive: {drive.relative_to(drive_root().parent.parent)})")
        for path in item.present:
            lines.append(f"    {path.name:<8} {path.stat().st_size / 1e6:8.1f} MB")
        for name in item.missing:
            why = ("not written yet: train the lab in the full profile" if name == LAST else
                   "not written (only when training tracks a score); last.pt is enough")
            lines.append(f"    {name:<8} {why}")
    links_file = Path(links_file)
    if links_file.is_file():
        problems = link_problems(read_links(links_file))
        lines.append(f"{links_file.name}: " + ("both links filled in." if not problems else "; ".join(problems)))
    else:
        lines.append(f"{links_file} is missing: fetch it from the course repository.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="checkpoint root (default: $GANLAB_CHECKPOINTS, MyDrive/gan-lab in Colab, ./checkpoints)")
    parser.add_argument("--links", default=str(LINKS_FILE), help="the links file (default: checkpoint_links.txt)")
    args = parser.parse_args(argv)
    print(report(args.root, args.links))
    return 0


if __name__ == "__main__":
    sys.exit(main())
