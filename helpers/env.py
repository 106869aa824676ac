"""Setup shared by every notebook: Colab or local, device, profile, output and checkpoint folders.

Nothing here runs at import time. A notebook calls :func:`setup_lab` once, in its first
code cell after the bootstrap, and keeps the returned :class:`LabEnv`.

Profiles (one switch, ``GANLAB_PROFILE`` or the notebook's ``PROFILE`` parameter):
    smoke  every cell runs in seconds (tests, CI)
    quick  a visible result on a laptop CPU in minutes
    full   the lab's real results (the default when a GPU is present)

The ``GANLAB_*`` environment variables are read here and nowhere else: :func:`settings` returns
them as one :class:`Settings` record (README, "Where things go", lists each with its default).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping, TypeVar

import numpy as np
import torch

PROFILES = ("smoke", "quick", "full")
DRIVE_MOUNT = Path("/content/drive")       # where Colab mounts Google Drive (GANLAB_DRIVE_MOUNT overrides it)
DRIVE_MOUNT_TIMEOUT_MS = 120_000           # how long drive.mount may wait for the student to allow access
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """The ``GANLAB_*`` environment variables, as read by :func:`settings`.

    ``None`` means "not set" (an empty value counts as not set); the function that uses a value
    applies its default, named in the comment. Paths are ``~``-expanded but not resolved: a relative
    path is taken from the working directory of whoever uses it.
    """

    profile: str | None = None              # GANLAB_PROFILE: smoke | quick | full; default full on a GPU, quick on a CPU
    device: str | None = None               # GANLAB_DEVICE: "cpu", "cuda", "cuda:1", "mps"; default CUDA > MPS > CPU
    data: Path | None = None                # GANLAB_DATA: folder with MNIST/, FashionMNIST/, malaria_sample/; default ./data
    cache: Path | None = None               # GANLAB_CACHE: downloads (MNIST when data is read-only, IML-Malaria); default ~/.cache/gan-lab/data
    offline: bool = False                   # GANLAB_OFFLINE: 1/true/yes turns dataset downloads off (the tests set it)
    checkpoints: Path | None = None         # GANLAB_CHECKPOINTS: checkpoint root; default MyDrive/gan-lab in Colab, else ./checkpoints
    output: Path | None = None              # GANLAB_OUTPUT: figures root; default ./outputs
    inception_weights: Path | None = None   # GANLAB_INCEPTION_WEIGHTS: Inception FID weights; default torch hub's cache
    malaria_data: Path | None = None        # GANLAB_MALARIA_DATA: Lab 3's data (M5 or IML); default helpers.malaria.fetch.malaria_data_path
    drive_mount: Path | None = None         # GANLAB_DRIVE_MOUNT: where Colab mounts Google Drive; default /content/drive
    iclevr_images: Path | None = None       # GANLAB_ICLEVR_IMAGES: the course's i-CLEVR PNGs (iclevr/); default the rendered stand-in


# The variable behind each field of Settings.
ENV_VARS: dict[str, str] = {f.name: f"GANLAB_{f.name.upper()}" for f in fields(Settings)}


def settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every ``GANLAB_*`` variable now (not at import, so a test's ``monkeypatch.setenv`` counts).

    Args:
        environ: the variables to read; default ``os.environ`` (or, say, the environment built for a subprocess).

    Returns:
        The :class:`Settings`: ``None`` (``offline``: False) for every variable that is unset or empty.
    """
    environ = os.environ if environ is None else environ

    def text(field: str) -> str | None:
        return environ.get(ENV_VARS[field], "").strip() or None

    def path(field: str) -> Path | None:
        value = text(field)
        return Path(value).expanduser() if value else None

    return Settings(
        profile=text("profile"),
        device=text("device"),
        data=path("data"),
        cache=path("cache"),
        offline=(text("offline") or "").lower() in ("1", "true", "yes"),
        checkpoints=path("checkpoints"),
        output=path("output"),
        inception_weights=path("inception_weights"),
        malaria_data=path("malaria_data"),
        drive_mount=path("drive_mount"),
        iclevr_images=path("iclevr_images"),
    )


def in_colab() -> bool:
    """True inside Google Colab: the ``google.colab`` module is loaded there, and a ``!python ...``
    command of a Colab cell inherits the runtime's ``COLAB_RELEASE_TAG`` variable."""
    return "google.colab" in sys.modules or bool(os.environ.get("COLAB_RELEASE_TAG"))


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as printed to the student: relative to the working directory when it lies inside it.

    Notebook outputs then read ``checkpoints/vanilla`` instead of one machine's absolute path;
    paths elsewhere (Google Drive in Colab, a custom folder) stay absolute, since that is where to look.
    """
    path = Path(path)
    try:
        rel = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return str(path)
    return str(rel)


def pick_device(prefer: str | None = None, verbose: bool = True) -> torch.device:
    """The training device: CUDA > MPS > CPU, or ``prefer``/``$GANLAB_DEVICE`` when given.

    Prints the choice; on a CPU-only Colab runtime it says how to switch to a GPU.
    """
    prefer = prefer or settings().device
    if prefer:
        device = torch.device(prefer)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if verbose:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type.upper()
        print(f"Device: {device} ({name})")
        if device.type == "cpu" and in_colab():
            print(
                "This Colab runtime has no GPU. Training will be slow: choose "
                "Runtime > Change runtime type > T4 GPU (or better), then run the notebook again."
            )
    return device


def resolve_profile(profile: str | None = None, device: torch.device | None = None) -> str:
    """``profile``, else ``$GANLAB_PROFILE``, else ``full`` on a GPU and ``quick`` on a CPU."""
    profile = profile or settings().profile
    if not profile:
        device = device or pick_device(verbose=False)
        profile = "quick" if device.type == "cpu" else "full"
    profile = profile.strip().lower()
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}: use one of {', '.join(PROFILES)} (GANLAB_PROFILE).")
    return profile


def by_profile(profile: str, *, smoke: T, quick: T, full: T) -> T:
    """Pick a value for the profile, e.g. ``num_epochs = by_profile(p, smoke=1, quick=3, full=20)``."""
    return {"smoke": smoke, "quick": quick, "full": full}[profile]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so a run can be repeated.

    On the CPU the same seed gives the same samples; on a GPU some kernels stay
    nondeterministic unless ``torch.use_deterministic_algorithms(True)`` is set as well.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _colab_install_missing(packages: list[str]) -> None:
    """pip-install the packages Colab lacks; torch and torchvision are never reinstalled."""
    import importlib.util

    missing = [p for p in packages if importlib.util.find_spec(p.split("==")[0].replace("-", "_")) is None]
    if missing:
        print("Installing:", " ".join(missing))
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)


def drive_mount() -> Path:
    """Where Google Drive is mounted in Colab: ``$GANLAB_DRIVE_MOUNT``, else ``/content/drive``."""
    return settings().drive_mount or DRIVE_MOUNT


def drive_root() -> Path:
    """The course's folder on Google Drive: ``<drive mount>/MyDrive/gan-lab``."""
    return drive_mount() / "MyDrive" / "gan-lab"


def mount_drive() -> str | None:
    """Mount Google Drive (Colab); ``None`` when it is mounted, else why it could not be.

    A mount that fails or times out (a refused permission, a Drive outage, a closed pop-up) is
    common in Colab: it must not stop the notebook, so the reason is returned, never raised.
    """
    mount = drive_mount()
    if (mount / "MyDrive").is_dir():
        return None
    try:
        from google.colab import drive  # type: ignore[import-not-found]

        drive.mount(str(mount), timeout_ms=DRIVE_MOUNT_TIMEOUT_MS)
    except Exception as err:  # noqa: BLE001 - any failure of the mount means: no Drive this session
        return f"{type(err).__name__}: {err}".strip().rstrip(":")
    if not (mount / "MyDrive").is_dir():
        return f"the mount finished but {mount / 'MyDrive'} does not exist"
    return None


def _drive_fallback(lab_folder: Path, reason: str) -> Path:
    """The runtime's own disk instead of Drive, with a warning a student cannot miss."""
    local = Path("checkpoints").resolve() / lab_folder.name
    line = "!" * 100
    print(f"{line}\nWARNING: Google Drive could not be mounted ({reason}).\n"
          f"Checkpoints go to {local} on this Colab runtime's own disk: they are LOST when the runtime\n"
          f"disconnects or is recycled. To keep them, run this cell again to retry the mount (allow access\n"
          f"when Colab asks), or set CHECKPOINT_DIR (path_to_checkpoint) in the parameters cell to a folder you can keep.\n{line}")
    return local


def _drive_folder_checked(folder: Path) -> None:
    """Refuse a checkpoint folder on the mounted Drive whose top folder (MyDrive, a shared drive) is not there.

    Creating it would make a folder on the runtime's disk inside the mount point, lost at the next
    disconnect, while the student believes it is on Drive.
    """
    mount = drive_mount()
    parts = folder.relative_to(mount).parts
    top = mount.joinpath(*(parts[:2] if parts and parts[0] == "Shareddrives" else parts[:1]))
    if top != mount and top.is_dir():
        return
    shared = sorted(p.name for p in (mount / "Shareddrives").glob("*")) if (mount / "Shareddrives").is_dir() else []
    raise FileNotFoundError(
        f"The checkpoint folder {folder} is on Google Drive, but {top} does not exist in the mounted Drive. "
        f"Check CHECKPOINT_DIR in the parameters cell: it must start with {mount / 'MyDrive'} or with "
        f"{mount / 'Shareddrives'}/<name> of a shared drive you can open"
        + (f" (yours: {', '.join(shared)})" if shared else "") + "; or set it to None for the default folder.")


@dataclass
class LabEnv:
    """Everything a notebook needs to know about where it runs."""

    lab: str                    # short lab name: "vanilla", "cwgan", "malaria"
    profile: str                # "smoke" | "quick" | "full"
    device: torch.device        # training device
    path_to_checkpoint: Path    # folder holding last.pt / best.pt
    output_dir: Path            # PNG figures and sample grids
    colab: bool                 # running in Google Colab

    def flush(self) -> None:
        """Push pending writes to disk (Drive syncs what is on disk); call when training ends."""
        flush_writes()


def flush_writes() -> None:
    """Flush file-system buffers so Google Drive uploads finished checkpoints."""
    if hasattr(os, "sync"):
        os.sync()


def finish_lab(env: LabEnv) -> None:
    """A lab's last cell: in Colab with Google Drive mounted, write everything to Drive and unmount it.

    Colab uploads what is written under the mount in the background; ``drive.flush_and_unmount()`` returns
    when every file (checkpoints, model files, a fetched dataset) is on Drive. Only in a lab's last cell:
    a later cell writing to Drive would need the mount again. Anywhere else it says there is nothing to do.

    Args:
        env: the lab's :class:`LabEnv`, from :func:`setup_lab`.
    """
    mount = drive_mount()
    if not env.colab:
        print(f"Nothing to do here (not in Colab): checkpoints are in {shown_path(env.path_to_checkpoint)}, "
              f"written to disk after every epoch.")
        return
    if not (mount / "MyDrive").is_dir():
        print(f"Nothing to do: Google Drive is not mounted. Checkpoints are in {env.path_to_checkpoint}, on this "
              f"runtime's own disk, lost when the runtime ends: download the ones you need (Files panel, right-click).")
        return
    flush_writes()
    try:
        from google.colab import drive  # type: ignore[import-not-found]

        drive.flush_and_unmount()
    except Exception as err:  # noqa: BLE001 - the lab is done; say what happened instead of failing its last cell
        print(f"WARNING: Google Drive could not be flushed and unmounted ({type(err).__name__}: {err}). Files "
              f"written in the last minutes may not be on Drive yet: wait a few minutes before closing this tab.")
        return
    print(f"Google Drive flushed and unmounted: everything under {mount} is saved (checkpoints in "
          f"{env.path_to_checkpoint}). To go on working, run the notebook again from the top.")


def checkpoint_root(colab: bool | None = None) -> Path:
    """``$GANLAB_CHECKPOINTS``, else ``MyDrive/gan-lab`` on the mounted Drive in Colab, else ``./checkpoints``."""
    root = settings().checkpoints
    if root is not None:
        return root.resolve()
    if in_colab() if colab is None else colab:
        return drive_root()
    return Path("checkpoints").resolve()


def setup_lab(
    lab: str,
    profile: str | None = None,
    path_to_checkpoint: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    device: str | None = None,
    colab_packages: tuple[str, ...] = (),
) -> LabEnv:
    """Prepare a lab run and print what was chosen.

    Args:
        lab: short lab name, used in folder names.
        profile: ``smoke``/``quick``/``full``; default from ``$GANLAB_PROFILE`` or the device.
        path_to_checkpoint: checkpoint folder (a notebook's ``CHECKPOINT_DIR``; in Colab a folder under the
            Drive mount, e.g. a shared drive, mounts Drive first); default ``<checkpoint_root>/<lab>`` for the full
            profile and ``<checkpoint_root>/<lab>-<profile>`` otherwise, so a smoke test never
            resumes (or overwrites) a real run. In Colab the default is on Google Drive; when Drive
            cannot be mounted, the runtime's disk (``./checkpoints/...``) with a loud warning.
        output_dir: figures folder; default ``$GANLAB_OUTPUT`` or ``./outputs``, then ``/<lab>-<profile>``.
        device: force a device (``"cpu"``, ``"cuda"``...); default CUDA > MPS > CPU.
        colab_packages: pip names to install in Colab when missing (never torch).

    Returns:
        The :class:`LabEnv` with every folder created.
    """
    colab = in_colab()
    if colab and colab_packages:
        _colab_install_missing(list(colab_packages))
    dev = pick_device(device)
    profile = resolve_profile(profile, dev)
    if path_to_checkpoint is None:
        suffix = lab if profile == "full" else f"{lab}-{profile}"
        root = checkpoint_root(colab)
        path_to_checkpoint = root / suffix
        if colab and root.is_relative_to(drive_mount()):  # only when checkpoints really go to Drive
            failed = mount_drive()
            if failed is not None:
                path_to_checkpoint = _drive_fallback(path_to_checkpoint, failed)
    elif colab and Path(path_to_checkpoint).expanduser().is_absolute() \
            and Path(path_to_checkpoint).expanduser().is_relative_to(drive_mount()):
        # A folder chosen on Drive (CHECKPOINT_DIR, e.g. a shared drive): mount first, check it is really there.
        path_to_checkpoint = Path(path_to_checkpoint).expanduser()
        failed = mount_drive()
        if failed is not None:
            path_to_checkpoint = _drive_fallback(path_to_checkpoint, failed)
        else:
            _drive_folder_checked(path_to_checkpoint)
    if output_dir is None:
        output_dir = (settings().output or Path("outputs")) / f"{lab}-{profile}"
    env = LabEnv(
        lab=lab,
        profile=profile,
        device=dev,
        path_to_checkpoint=Path(path_to_checkpoint).expanduser().resolve(),
        output_dir=Path(output_dir).expanduser().resolve(),
        colab=colab,
    )
    env.path_to_checkpoint.mkdir(parents=True, exist_ok=True)
    env.output_dir.mkdir(parents=True, exist_ok=True)
    print(f"Profile: {profile}   checkpoints: {shown_path(env.path_to_checkpoint)}   figures: {shown_path(env.output_dir)}")
    return env
