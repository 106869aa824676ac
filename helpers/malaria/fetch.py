"""IML-Malaria for Lab 3: fetched from its public repository, verified file by file, cached.

The lab's ``quick`` and ``full`` profiles train on IML-Malaria (Arshad et al., 2022: 345 thin-blood-smear
fields and one ``annotations.json``, about 70 MB), which lives in a public GitHub repository without a
licence to redistribute it: the course ships this fetcher and a manifest, never the images.

**Where Lab 3's data comes from** is decided in one place, :func:`malaria_data_path`; the notebook's
parameters cell calls it. In order:

1. ``$GANLAB_MALARIA_DATA`` (an M5 or IML-Malaria folder), as given;
2. ``smoke`` profile only: ``$GANLAB_DATA/malaria_sample`` when it exists (4 fields, for the tests);
3. ``$GANLAB_DATA/iml_malaria`` when it holds the complete set (checked against the manifest), used in
   place: it may be read-only (``../shared/data`` on the course machines);
4. ``data/malaria`` in the working directory, when it exists (a copy or link the student put there);
5. the cache folder ``iml_malaria/`` under ``$GANLAB_CACHE``, else, in Colab, on Google Drive
   (``MyDrive/gan-lab/data``, so it is fetched once, not every session; the runtime's own disk with a
   warning when Drive cannot be mounted), else ``~/.cache/gan-lab/data``. A complete cache is used as it
   is; an incomplete one is completed by :func:`fetch_iml_malaria`, unless ``$GANLAB_OFFLINE`` is set:
   then :class:`~helpers.malaria.data.MalariaDataError` names every place looked at.

**How it is fetched.** One HTTPS request per file, for the raw file at the pinned commit
(``https://raw.githubusercontent.com/<repository>/<commit>/<path>``), not the commit's zip archive:

* verifiable: each file is checked on its own against the size and SHA-256 of the committed manifest
  (``iml_malaria_manifest.json``); the archive's own bytes are generated on request by GitHub and are not
  guaranteed to stay the same, so it could only be checked after unpacking, all or nothing;
* resumable: an interrupted fetch loses at most the few files in flight (about 200 kB each), where an
  interrupted 70 MB archive starts again from zero (GitHub serves archives as a stream, no ranges);
  a damaged file costs one file's re-fetch;
* content at a commit never changes, and the upstream files are plain Git blobs (not Git LFS pointers),
  so the raw URL serves the very bytes the manifest was made from.

Every file is written atomically: downloaded into a hidden temporary file beside its place
(``.<name>.<random>.part``), checked, then renamed. An interrupted fetch therefore never leaves a file
under its real name that is not complete, and the next call fetches only what is missing or damaged.
Files the manifest does not list are never touched; a cached file that fails the check (truncated,
corrupt) is replaced by a verified one.

Command line::

    python -m helpers.malaria.fetch path [--profile quick]   # where Lab 3's data is (fetched when needed)
    python -m helpers.malaria.fetch fetch DEST [--source URL_OR_FOLDER]
    python -m helpers.malaria.fetch verify FOLDER              # exit 1 naming each missing or damaged file
    python -m helpers.malaria.fetch manifest FOLDER [--check]  # regenerate the manifest from a complete copy
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Sequence

from helpers.env import drive_root, in_colab, mount_drive, resolve_profile, settings
from helpers.malaria.data import MalariaDataError

REPOSITORY = "QaziAmmar/A-Dataset-and-Benchmark-for-Malaria-Life-Cycle-Classification-in-Thin-Blood-Smear-Images"
COMMIT = "ae06c862a4482124d088f0589ad92fa9be828b5f"  # 2021-09-08; SOURCE.txt of ../shared/data/iml_malaria
MANIFEST_PATH = Path(__file__).with_name("iml_malaria_manifest.json")
FOLDER = "iml_malaria"             # the dataset's folder under a data root or a cache
ANNOTATIONS = "annotations.json"   # upstream layout: annotations.json at the top, images in IML_Malaria/
IMAGE_FOLDER = "IML_Malaria"
TIMEOUT_S = 60.0                   # per request: a stalled connection is retried, not waited on forever
STALE_PART_S = 3600.0              # temporary files older than this are left over from an interrupted run
_CHUNK = 1 << 16
_HINT = 'See data_README.md (section "IML-Malaria").'


class FetchError(MalariaDataError):
    """IML-Malaria could not be fetched and verified; the message names each file and why."""


@dataclass(frozen=True)
class FileEntry:
    """One file of the dataset as the manifest records it."""

    path: str    # relative, "/"-separated, as in the upstream repository
    size: int    # bytes
    sha256: str  # hex digest of the whole file


@dataclass(frozen=True)
class Manifest:
    """What a complete copy holds and where it comes from."""

    repository: str               # GitHub owner/name
    commit: str                   # the pinned commit
    files: tuple[FileEntry, ...]  # annotations.json, then the images in name order

    @property
    def base_url(self) -> str:
        """Raw-file URL prefix of the pinned commit (a file's URL is this plus its path)."""
        return f"https://raw.githubusercontent.com/{self.repository}/{self.commit}/"

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


# ----------------------------------------------------------------------------- manifest
def load_manifest(path: str | os.PathLike = MANIFEST_PATH) -> Manifest:
    """Read a manifest written by :func:`write_manifest`.

    Raises:
        ValueError: a malformed manifest, or a path that would leave the dataset folder.
    """
    raw = json.loads(Path(path).read_text())
    files = tuple(FileEntry(str(f["path"]), int(f["size"]), str(f["sha256"]).lower()) for f in raw["files"])
    for f in files:
        parts = f.path.split("/")
        if f.path.startswith("/") or ".." in parts or "" in parts or "\\" in f.path or len(f.sha256) != 64:
            raise ValueError(f"{path}: bad entry {f}")
    return Manifest(str(raw["repository"]), str(raw["commit"]), files)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def make_manifest(folder: str | os.PathLike, repository: str = REPOSITORY, commit: str = COMMIT) -> dict:
    """The manifest of a complete copy: ``annotations.json`` and every image it names.

    Only what the lab uses is listed (the repository's ``mean_image.png``, README and code are not).

    Args:
        folder: a copy in the upstream layout (``annotations.json``, ``IML_Malaria/*.JPG``).

    Returns:
        The manifest as JSON-ready data (the form :func:`write_manifest` stores).

    Raises:
        FileNotFoundError: an image named in ``annotations.json`` is not in ``folder``.
    """
    folder = Path(folder)
    names = sorted({str(e["image_name"]) for e in json.loads((folder / ANNOTATIONS).read_text())})
    paths = [ANNOTATIONS] + [f"{IMAGE_FOLDER}/{name}" for name in names]
    missing = [p for p in paths if not (folder / p).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a complete copy: {len(missing)} files missing, e.g. {missing[:3]}")
    return {
        "dataset": "IML-Malaria (Arshad et al., 2022): the files Lab 3 uses; helpers/malaria/fetch.py",
        "repository": repository,
        "commit": commit,
        "regenerate": "python -m helpers.malaria.fetch manifest /path/to/a/complete/iml_malaria",
        "files": [{"path": p, "size": (folder / p).stat().st_size, "sha256": sha256_file(folder / p)} for p in paths],
    }


def manifest_text(manifest: dict) -> str:
    """The manifest as stored: one file per line, so a change shows as a one-line diff."""
    head = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in manifest.items() if k != "files")
    files = ",\n".join(f"    {json.dumps(f)}" for f in manifest["files"])
    return "{\n" + head + ',\n  "files": [\n' + files + "\n  ]\n}\n"


def write_manifest(folder: str | os.PathLike, out: str | os.PathLike = MANIFEST_PATH) -> Path:
    """Regenerate the manifest from a complete copy (``python -m helpers.malaria.fetch manifest FOLDER``)."""
    out = Path(out)
    _write_atomic(out, manifest_text(make_manifest(folder)).encode())
    return out


# ----------------------------------------------------------------------------- verification
def check_file(path: Path, entry: FileEntry) -> str | None:
    """``None`` when ``path`` is ``entry``'s file, else what is wrong with it."""
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != entry.size:
        return f"{size:,} bytes, expected {entry.size:,} (truncated or another file)"
    digest = sha256_file(path)
    if digest != entry.sha256:
        return f"SHA-256 {digest[:16]}..., expected {entry.sha256[:16]}... (damaged or another file)"
    return None


def verify(folder: str | os.PathLike, manifest: Manifest | None = None) -> dict[str, str]:
    """Check a copy against the manifest.

    Args:
        folder: the dataset folder (holding ``annotations.json`` and ``IML_Malaria/``).
        manifest: default the committed one.

    Returns:
        Relative path -> problem for every missing or damaged file; empty when the copy is complete.
    """
    manifest = manifest or load_manifest()
    folder = Path(folder)
    problems = {}
    for entry in manifest.files:
        problem = check_file(folder / entry.path, entry)
        if problem:
            problems[entry.path] = problem
    return problems


def _summary(problems: dict[str, str], manifest: Manifest) -> str:
    """One line on an incomplete copy: how many files are wrong, and the first few."""
    missing = sum(p == "missing" for p in problems.values())
    shown = "; ".join(f"{path}: {why}" for path, why in list(problems.items())[:3])
    return (f"{len(problems)} of {len(manifest.files)} files missing or damaged "
            f"({missing} missing; {shown}{'; ...' if len(problems) > 3 else ''})")


# ----------------------------------------------------------------------------- fetching
def _open_url(url: str, timeout: float) -> BinaryIO:
    """A readable response for ``url`` (``https://`` or ``file://``); the tests replace it to count or break fetches."""
    request = urllib.request.Request(url, headers={"User-Agent": "gan-lab (helpers.malaria.fetch)"})
    return urllib.request.urlopen(request, timeout=timeout)


def _base_url(source: str | os.PathLike) -> str:
    """A URL prefix from a URL or a local folder in the upstream layout, ending in ``/``."""
    text = os.fspath(source)
    if "://" not in text:
        text = Path(text).expanduser().resolve().as_uri()
    return text if text.endswith("/") else text + "/"


def _write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _download(url: str, target: Path, entry: FileEntry) -> str | None:
    """One attempt: stream ``url`` into a temporary file, check it, rename it to ``target``.

    Returns:
        ``None`` when ``target`` now holds the verified file, else what was wrong with what arrived
        (then nothing is left behind: the temporary file is removed, ``target`` is untouched).
    """
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp: Path | None = Path(tmp_name)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, _open_url(url, TIMEOUT_S) as response:
            while size <= entry.size and (chunk := response.read(_CHUNK)):
                size += len(chunk)
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())  # on disk before the rename makes it count as complete
        if size != entry.size:
            return f"received {size:,}{'+' if size > entry.size else ''} bytes, expected {entry.size:,}"
        if digest.hexdigest() != entry.sha256:
            return f"received SHA-256 {digest.hexdigest()[:16]}..., expected {entry.sha256[:16]}..."
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        tmp = None
        return None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _fetch_one(url: str, target: Path, entry: FileEntry, retries: int) -> str | None:
    """Up to ``retries`` attempts of :func:`_download`; ``None`` on success, else the last problem."""
    problem, attempt = "not tried", 0
    for attempt in range(1, max(1, retries) + 1):
        if attempt > 1 and not url.startswith("file:"):
            time.sleep(min(2.0 ** (attempt - 1), 10.0))  # a rate limit or a reset connection often passes
        try:
            problem = _download(url, target, entry)
        except (OSError, http.client.HTTPException) as err:  # urllib's URLError and HTTPError are OSErrors
            problem = f"{type(err).__name__}: {err}"
            if isinstance(err, urllib.error.HTTPError) and err.code == 404:
                break  # the file is not at that address: asking again will not help
        if problem is None:
            return None
    return f"{problem} (from {url}, {attempt} attempt{'s' if attempt > 1 else ''})"


def _remove_stale_parts(dest: Path, manifest: Manifest) -> None:
    """Delete this module's own temporary files that an interrupted run left behind (older than an hour,
    so a fetch running at the same time in another process keeps its own)."""
    names = {Path(f.path).name for f in manifest.files}
    now = time.time()
    for folder in {dest / Path(f.path).parent for f in manifest.files}:
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            stem = p.name.rsplit(".", 2)[0][1:] if p.name.startswith(".") and p.name.endswith(".part") else None
            if stem in names and now - p.stat().st_mtime > STALE_PART_S:
                p.unlink(missing_ok=True)


def fetch_iml_malaria(
    dest: str | os.PathLike,
    source: str | os.PathLike | None = None,
    manifest: Manifest | None = None,
    workers: int = 8,
    retries: int = 3,
    verbose: bool = True,
) -> Path:
    """Make ``dest`` a complete, verified copy of IML-Malaria, fetching only what is missing or damaged.

    Args:
        dest: the dataset folder to fill (created); files the manifest does not list are left alone.
        source: where to fetch from: a URL prefix (``https://``, ``file://``) or a local folder, in the
            upstream layout; default the raw files of the pinned commit on GitHub.
        manifest: default the committed one.
        workers: files fetched at the same time.
        retries: attempts per file (a damaged or truncated download is fetched again).
        verbose: print what is fetched and the progress.

    Returns:
        ``dest``, complete.

    Raises:
        FetchError: some files could not be fetched and verified (each named, with why); every file
            that was verified is kept, so calling again resumes.
        MalariaDataError: files are missing, ``$GANLAB_OFFLINE`` is set and ``source`` is not local.
    """
    manifest = manifest or load_manifest()
    return fetch_verified(manifest, dest, _base_url(source if source is not None else manifest.base_url),
                          what="IML-Malaria", hint=_HINT, offline_error=MalariaDataError, fetch_error=FetchError,
                          write_hint=", or GANLAB_MALARIA_DATA to a copy you have", workers=workers, retries=retries,
                          verbose=verbose)


def fetch_verified(
    manifest: Manifest,
    dest: str | os.PathLike,
    base: str,
    *,
    what: str,
    hint: str,
    offline_error: type[Exception],
    fetch_error: type[Exception],
    write_hint: str = "",
    workers: int = 8,
    retries: int = 3,
    verbose: bool = True,
) -> Path:
    """Make ``dest`` hold every file of ``manifest``, verified, fetching only what is missing or damaged.

    The one fetch loop of the project's datasets (IML-Malaria here, the i-CLEVR label files in
    :mod:`helpers.iclevr.data`): files are fetched ``workers`` at a time, each written atomically only once its
    size and SHA-256 match; what was verified is kept, so a call after a failure resumes.

    Args:
        manifest: the files and their sizes and hashes.
        dest: the folder to fill (created).
        base: the URL prefix the manifest's paths are appended to (see ``_base_url``).
        what: the dataset's name in messages, e.g. "IML-Malaria".
        hint: the last sentence of every error (where the data README says more).
        offline_error: raised when files are missing, ``$GANLAB_OFFLINE`` is set and ``base`` is not local.
        fetch_error: raised when ``dest`` cannot be written or some files could not be fetched and verified.
        write_hint: added to the "set GANLAB_CACHE" advice when ``dest`` cannot be written.
        workers, retries, verbose: files fetched at the same time, attempts per file, print the progress.

    Returns:
        ``dest``, complete.
    """
    dest = Path(dest).expanduser()
    todo = [(entry, why) for entry in manifest.files if (why := check_file(dest / entry.path, entry))]
    if not todo:
        return dest
    if settings().offline and not base.startswith("file:"):
        raise offline_error(f"{dest} is missing {len(todo)} {what} files and GANLAB_OFFLINE is set, so "
                            f"they were not fetched from {base}. {hint}")
    try:
        for folder in {(dest / entry.path).parent for entry, _ in todo}:
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise fetch_error(f"Cannot write {what} into {dest}: {err}. Set GANLAB_CACHE to a writable "
                          f"folder{write_hint}. {hint}") from None
    _remove_stale_parts(dest, manifest)
    if verbose:
        size_mb = sum(entry.size for entry, _ in todo) / 1e6
        print(f"Fetching {what}: {len(todo)} of {len(manifest.files)} files ({size_mb:.1f} MB) "
              f"from {base} into {dest}")
        for entry, why in todo:
            if why != "missing":
                print(f"  fetching {entry.path} again: the copy there has {why}")
    failures: dict[str, str] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures = {pool.submit(_fetch_one, base + urllib.parse.quote(entry.path), dest / entry.path, entry, retries):
                   entry for entry, _ in todo}
        for done, future in enumerate(as_completed(futures), 1):
            problem = future.result()
            if problem:
                failures[futures[future].path] = problem
            if verbose and (done % 50 == 0 or done == len(todo)):
                print(f"  {done}/{len(todo)} files")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an interrupt: finish the files in flight, start no more
    if failures:
        lines = "\n".join(f"  {path}: {why}" for path, why in sorted(failures.items()))
        kept = len(manifest.files) - len(failures)
        raise fetch_error(
            f"{what}: {len(failures)} of {len(manifest.files)} files could not be fetched and verified "
            f"into {dest}:\n{lines}\nThe {kept} verified files are kept and nothing unverified was written; "
            f"run again to fetch the rest. {hint}"
        )
    if verbose:
        print(f"{what} complete: {len(manifest.files)} files verified in {dest}")
    return dest


# ----------------------------------------------------------------------------- where Lab 3's data is
def _local_cache() -> Path:
    """``$GANLAB_CACHE``, else ``~/.cache/gan-lab/data`` (as helpers.data uses for MNIST)."""
    return settings().cache or Path.home() / ".cache" / "gan-lab" / "data"


def cache_folder() -> Path:
    """Where a fetched IML-Malaria goes: ``iml_malaria/`` under ``$GANLAB_CACHE`` when set; else, in Colab,
    under ``MyDrive/gan-lab/data`` on Google Drive (mounted here), or on the runtime's own disk with a
    warning when Drive cannot be mounted; else under ``~/.cache/gan-lab/data``."""
    if settings().cache is None and in_colab():
        failed = mount_drive()
        if failed is None:
            return drive_root() / "data" / FOLDER
        local = _local_cache() / FOLDER
        line = "!" * 100
        print(f"{line}\nWARNING: Google Drive could not be mounted ({failed}).\n"
              f"IML-Malaria (about 70 MB) goes to {local} on this Colab runtime's own disk: it is LOST when the\n"
              f"runtime disconnects or is recycled, and fetched again in the next session. To keep it on Drive,\n"
              f"run this cell again to retry the mount (allow access when Colab asks).\n{line}")
        return local
    return _local_cache() / FOLDER


def malaria_data_path(
    profile: str | None = None,
    *,
    source: str | os.PathLike | None = None,
    manifest: Manifest | None = None,
) -> Path:
    """Lab 3's data folder (the notebook's ``DATA_PATH``), fetching IML-Malaria when it is needed.

    The order (the module's docstring says why): ``$GANLAB_MALARIA_DATA``; for ``smoke``,
    ``$GANLAB_DATA/malaria_sample``; a complete ``$GANLAB_DATA/iml_malaria``; ``data/malaria``; the cache
    (:func:`cache_folder`), completed by :func:`fetch_iml_malaria` unless ``$GANLAB_OFFLINE`` is set.

    Args:
        profile: ``smoke``/``quick``/``full``; default ``$GANLAB_PROFILE``, else by device (as ``setup_lab``).
        source: where to fetch from (see :func:`fetch_iml_malaria`); default GitHub at the pinned commit.
        manifest: default the committed one.

    Returns:
        A folder :func:`helpers.malaria.data.load_fields` reads.

    Raises:
        MalariaDataError: offline and IML-Malaria is nowhere complete (the message names each place looked at).
        FetchError: the fetch failed for some files (named).
    """
    env = settings()
    if env.malaria_data is not None:
        return env.malaria_data
    profile = resolve_profile(profile)
    looked = ["GANLAB_MALARIA_DATA: not set"]
    if profile == "smoke" and env.data is not None:
        sample = env.data / "malaria_sample"
        if sample.is_dir():
            return sample
        looked.append(f"{sample} (the smoke profile's sample): does not exist")
    manifest = manifest or load_manifest()
    if env.data is None:
        looked.append("$GANLAB_DATA/iml_malaria: GANLAB_DATA not set")
    else:
        shared = env.data / FOLDER
        problems = verify(shared, manifest) if shared.is_dir() else None
        if problems == {}:
            return shared
        if problems:
            print(f"Note: not using {shared}: {_summary(problems, manifest)}.")
        looked.append(f"{shared}: " + (_summary(problems, manifest) if problems else "does not exist"))
    student_copy = Path("data") / "malaria"
    if student_copy.exists():
        return student_copy
    looked.append(f"{student_copy.resolve()}: does not exist")
    cache = cache_folder()
    if not env.offline:
        return fetch_iml_malaria(cache, source=source, manifest=manifest)
    problems = verify(cache, manifest) if cache.is_dir() else None
    if problems == {}:
        return cache
    looked.append(f"{cache} (the download cache): " + (_summary(problems, manifest) if problems else "does not exist"))
    places = "\n".join(f"  - {line}" for line in looked)
    raise MalariaDataError(
        f"Lab 3's {profile} profile needs IML-Malaria ({len(manifest.files)} files, about "
        f"{manifest.total_size / 1e6:.0f} MB), and no complete copy is on this machine; GANLAB_OFFLINE is set, "
        f"so it was not downloaded. Looked at:\n{places}\n"
        f"Unset GANLAB_OFFLINE to fetch it into {cache}, put a complete copy at one of those places, or set "
        f"GANLAB_MALARIA_DATA to an M5 or IML-Malaria folder (e.g. $GANLAB_DATA/malaria_sample for the 4-field "
        f"sample). {_HINT}"
    )


# ----------------------------------------------------------------------------- command line
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.malaria.fetch",
                                     description="Fetch, verify and locate IML-Malaria, Lab 3's data.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_path = sub.add_parser("path", help="print Lab 3's data folder (fetching IML-Malaria when needed)")
    p_path.add_argument("--profile", choices=("smoke", "quick", "full"), default=None)
    p_fetch = sub.add_parser("fetch", help="fetch (or complete) a verified copy into DEST")
    p_fetch.add_argument("dest")
    p_fetch.add_argument("--source", default=None, help="URL prefix or local folder in the upstream layout")
    p_verify = sub.add_parser("verify", help="check a copy against the manifest")
    p_verify.add_argument("folder")
    p_manifest = sub.add_parser("manifest", help="regenerate the manifest from a complete copy")
    p_manifest.add_argument("folder")
    p_manifest.add_argument("--check", action="store_true", help="exit 1 when the committed manifest differs")
    args = parser.parse_args(argv)
    try:
        if args.command == "path":
            print(malaria_data_path(args.profile))
        elif args.command == "fetch":
            fetch_iml_malaria(args.dest, source=args.source)
        elif args.command == "verify":
            problems = verify(args.folder)
            for path, why in problems.items():
                print(f"{path}: {why}", file=sys.stderr)
            print(f"{args.folder}: " + ("complete" if not problems else _summary(problems, load_manifest())))
            return 1 if problems else 0
        elif args.check:
            same = MANIFEST_PATH.read_text() == manifest_text(make_manifest(args.folder))
            print(f"{MANIFEST_PATH}: " + ("up to date" if same else f"differs from {args.folder}; regenerate it"))
            return 0 if same else 1
        else:
            print(f"wrote {write_manifest(args.folder)}")
    except (MalariaDataError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
