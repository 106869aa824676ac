"""IML-Malaria's fetcher (helpers.malaria.fetch): verified, resumable, atomic; where Lab 3's data is found.

No test touches the network: every fetch reads a local copy in the upstream layout (a few real files
from ``$GANLAB_DATA/iml_malaria``) through a ``file://`` URL or a folder, and any other URL fails the test.
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import shutil
import subprocess
import time
import tomllib
import types
from pathlib import Path

import pytest

from colab_support import fake_colab
from conftest import REPO_ROOT
from helpers.env import settings
from helpers.malaria import fetch
from helpers.malaria.data import MalariaDataError, load_fields

_DATA = settings().data  # conftest has set it (../shared/data); read now, before a test changes the variable
SHARED = _DATA / "iml_malaria" if _DATA is not None else None
IMAGES = ("PA171710.JPG", "PA171772.JPG", "PA171862.JPG")  # real fields with stage boxes (malaria_sample/SOURCE.txt)
STAGES_OF_IMAGES = {"ring": 3, "trophozoite": 1, "schizont": 1, "gametocyte": 3}


@pytest.fixture
def shared_iml() -> Path:
    """The complete IML-Malaria copy of the course machines (read-only)."""
    if SHARED is None or not (SHARED / "annotations.json").is_file():
        pytest.fail(f"GANLAB_DATA={_DATA} has no iml_malaria/ (the whole set); see data_README.md")
    return SHARED


@pytest.fixture(autouse=True)
def opened(monkeypatch) -> list[str]:
    """Every URL the fetcher opens, in order; a URL that is not ``file://`` fails the test."""
    urls: list[str] = []
    real = fetch._open_url

    def guarded(url, timeout):
        assert url.startswith("file:"), f"a test reached for the network: {url}"
        urls.append(url)
        return real(url, timeout)

    monkeypatch.setattr(fetch, "_open_url", guarded)
    return urls


@pytest.fixture
def source(tmp_path, shared_iml) -> Path:
    """A small upstream repository on disk: annotations.json (the 3 images' entries, unchanged), the 3 real
    images in IML_Malaria/, and a file the lab does not use."""
    src = tmp_path / "upstream"
    (src / "IML_Malaria").mkdir(parents=True)
    entries = json.loads((shared_iml / "annotations.json").read_text())
    (src / "annotations.json").write_text(json.dumps([e for e in entries if e["image_name"] in IMAGES]))
    for name in IMAGES:
        shutil.copyfile(shared_iml / "IML_Malaria" / name, src / "IML_Malaria" / name)
    (src / "README.md").write_text("not part of the dataset")
    return src


@pytest.fixture
def manifest(source, tmp_path) -> fetch.Manifest:
    """The manifest of ``source`` as it is before a test damages it, written and read back as the real one is."""
    path = tmp_path / "manifest.json"
    path.write_text(fetch.manifest_text(fetch.make_manifest(source)))
    return fetch.load_manifest(path)


@pytest.fixture
def lab3_env(tmp_path, monkeypatch) -> types.SimpleNamespace:
    """Nothing set but an empty data root, a cache and HOME in tmp_path, a fresh working directory, offline."""
    for var in ("GANLAB_MALARIA_DATA", "GANLAB_PROFILE", "GANLAB_DRIVE_MOUNT", "COLAB_RELEASE_TAG"):
        monkeypatch.delenv(var, raising=False)
    env = types.SimpleNamespace(tmp=tmp_path, data=tmp_path / "data", cache=tmp_path / "cache",
                                home=tmp_path / "home", work=tmp_path / "work")
    for folder in (env.data, env.home, env.work):
        folder.mkdir()
    monkeypatch.setenv("GANLAB_DATA", str(env.data))
    monkeypatch.setenv("GANLAB_CACHE", str(env.cache))
    monkeypatch.setenv("HOME", str(env.home))  # Path.home(): the default cache, never the real one
    monkeypatch.setenv("GANLAB_OFFLINE", "1")
    monkeypatch.chdir(env.work)
    return env


def fetched_paths(urls: list[str], manifest: fetch.Manifest) -> list[str]:
    """The manifest paths of the opened URLs, in order."""
    return [next(f.path for f in manifest.files if url.endswith("/" + f.path)) for url in urls]


# ----------------------------------------------------------------------------- the committed manifest
def test_the_manifest_describes_the_complete_shared_copy(shared_iml):
    manifest = fetch.load_manifest()
    assert (manifest.repository, manifest.commit) == (fetch.REPOSITORY, fetch.COMMIT)
    assert manifest.base_url == f"https://raw.githubusercontent.com/{fetch.REPOSITORY}/{fetch.COMMIT}/"
    paths = [f.path for f in manifest.files]
    names = {e["image_name"] for e in json.loads((shared_iml / "annotations.json").read_text())}
    assert paths[0] == "annotations.json" and len(paths) == 346 == len(set(paths))
    assert {p.removeprefix("IML_Malaria/") for p in paths[1:]} == names and len(names) == 345
    assert all(p.startswith("IML_Malaria/") and p.endswith(".JPG") for p in paths[1:])
    assert 65e6 < manifest.total_size < 75e6  # "about 70 MB"
    assert fetch.verify(shared_iml) == {}  # all 345 images and the annotations, size and SHA-256
    # Regenerating from the copy gives the committed file byte for byte.
    assert fetch.manifest_text(fetch.make_manifest(shared_iml)) == fetch.MANIFEST_PATH.read_text()
    assert fetch.main(["manifest", str(shared_iml), "--check"]) == 0
    assert fetch.main(["verify", str(shared_iml)]) == 0
    fields = load_fields(shared_iml)  # the upstream layout is what the lab reads
    assert len(fields) + fields.skipped["image_without_objects"] == 345


def test_a_manifest_path_that_leaves_the_dataset_folder_is_refused(tmp_path):
    bad = {"repository": "a/b", "commit": "c", "files": [{"path": "../evil.JPG", "size": 1, "sha256": "0" * 64}]}
    (tmp_path / "m.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="evil"):
        fetch.load_manifest(tmp_path / "m.json")


def test_the_manifest_ships_with_the_package_and_the_images_never_do():
    package_data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    rel = fetch.MANIFEST_PATH.relative_to(REPO_ROOT / "helpers").as_posix()
    assert any(fnmatch.fnmatch(rel, glob) for glob in package_data["helpers"]), rel
    images = {Path(f.path).name for f in fetch.load_manifest().files[1:]}
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    assert not [t for t in tracked.splitlines() if Path(t).name in images or t.lower().endswith((".jpg", ".jpeg"))]


# ----------------------------------------------------------------------------- fetching
def test_a_fetch_from_a_file_url_gives_a_verified_copy_the_lab_reads(tmp_path, source, manifest, opened, shared_iml):
    dest = tmp_path / "cache" / "iml_malaria"
    assert fetch.fetch_iml_malaria(dest, source=source.as_uri(), manifest=manifest) == dest
    assert fetch.verify(dest, manifest) == {}
    assert sorted(fetched_paths(opened, manifest)) == sorted(f.path for f in manifest.files)
    assert all(url.startswith(source.as_uri() + "/") for url in opened)
    for name in IMAGES:  # the upstream layout, the real bytes
        assert (dest / "IML_Malaria" / name).read_bytes() == (shared_iml / "IML_Malaria" / name).read_bytes()
    assert sorted(p.name for p in dest.rglob("*")) == sorted(["IML_Malaria", "annotations.json", *IMAGES])
    fields = load_fields(dest)
    assert sorted(f.key for f in fields) == sorted(Path(n).stem for n in IMAGES) and not fields.skipped
    assert fields.stage_counts() == STAGES_OF_IMAGES

    opened.clear()
    assert fetch.fetch_iml_malaria(dest, source=source, manifest=manifest) == dest  # complete: nothing fetched
    assert opened == []


def test_a_local_folder_works_as_the_source(tmp_path, source, manifest):
    dest = fetch.fetch_iml_malaria(tmp_path / "copy", source=str(source), manifest=manifest, workers=1)
    assert fetch.verify(dest, manifest) == {}


def test_a_damaged_or_truncated_file_in_the_source_is_refused_naming_it(tmp_path, source, manifest, opened):
    damaged, short = manifest.files[1], manifest.files[2]
    data = bytearray((source / damaged.path).read_bytes())
    data[5000] ^= 0xFF  # same size, one bit pattern changed
    (source / damaged.path).write_bytes(bytes(data))
    (source / short.path).write_bytes((source / short.path).read_bytes()[:-10])
    dest = tmp_path / "copy"
    with pytest.raises(fetch.FetchError) as err:
        fetch.fetch_iml_malaria(dest, source=source, manifest=manifest, retries=2)
    message = str(err.value)
    assert "2 of 4 files" in message and "run again" in message and "data_README.md" in message
    line = {ln.strip().split(":")[0]: ln for ln in message.splitlines() if ln.startswith("  ")}
    assert "SHA-256" in line[damaged.path] and "2 attempts" in line[damaged.path]
    assert f"{short.size - 10:,} bytes, expected {short.size:,}" in line[short.path]
    assert fetched_paths(opened, manifest).count(damaged.path) == 2  # fetched again before giving up
    assert not (dest / damaged.path).exists() and not (dest / short.path).exists()
    assert set(fetch.verify(dest, manifest)) == {damaged.path, short.path}  # the good ones are kept, verified
    assert not [p for p in dest.rglob("*") if p.name.endswith(".part")]  # no temporary file left


def test_a_download_damaged_once_is_fetched_again(tmp_path, source, manifest, monkeypatch, opened):
    victim = manifest.files[1]
    guarded = fetch._open_url
    damaged = []

    def flaky(url, timeout):
        response = guarded(url, timeout)
        if url.endswith(victim.path) and not damaged:
            data = bytearray(response.read())
            response.close()
            data[100] ^= 0x01
            damaged.append(url)
            return io.BytesIO(bytes(data))
        return response

    monkeypatch.setattr(fetch, "_open_url", flaky)
    dest = fetch.fetch_iml_malaria(tmp_path / "copy", source=source, manifest=manifest)
    assert damaged and fetch.verify(dest, manifest) == {}
    assert fetched_paths(opened, manifest).count(victim.path) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_cached_file_is_fetched_again(tmp_path, source, manifest, opened, capsys, damage):
    dest = fetch.fetch_iml_malaria(tmp_path / "copy", source=source, manifest=manifest)
    victim = manifest.files[1]
    data = (dest / victim.path).read_bytes()
    if damage == "truncate":
        (dest / victim.path).write_bytes(data[:1000])
    else:
        (dest / victim.path).write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    problems = fetch.verify(dest, manifest)
    assert list(problems) == [victim.path]
    assert ("1,000 bytes, expected" if damage == "truncate" else "SHA-256") in problems[victim.path]
    opened.clear()
    capsys.readouterr()
    fetch.fetch_iml_malaria(dest, source=source, manifest=manifest)
    assert fetched_paths(opened, manifest) == [victim.path]  # only the damaged file
    assert fetch.verify(dest, manifest) == {}
    assert f"fetching {victim.path} again" in capsys.readouterr().out


class _InterruptedHalfway(io.BytesIO):
    """A response that delivers half of its bytes, in small pieces, then is interrupted (Ctrl-C)."""

    def read(self, n=-1):
        if self.tell() >= len(self.getvalue()) // 2:
            raise KeyboardInterrupt
        return super().read(1000)


def test_an_interrupted_fetch_leaves_nothing_that_passes_as_complete_and_resumes(tmp_path, source, manifest,
                                                                                   monkeypatch, opened):
    dest = tmp_path / "copy"
    victim = manifest.files[2]
    guarded = fetch._open_url

    def interrupted(url, timeout):
        response = guarded(url, timeout)
        if url.endswith(victim.path):
            data = response.read()
            response.close()
            return _InterruptedHalfway(data)
        return response

    monkeypatch.setattr(fetch, "_open_url", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch.fetch_iml_malaria(dest, source=source, manifest=manifest, workers=1)
    problems = fetch.verify(dest, manifest)
    assert problems.get(victim.path) == "missing" and len(problems) < len(manifest.files)
    by_path = {f.path: f for f in manifest.files}
    for p in dest.rglob("*"):  # whatever carries a real name is complete
        if p.is_file() and not p.name.startswith("."):
            rel = p.relative_to(dest).as_posix()
            assert fetch.check_file(p, by_path[rel]) is None, rel
    assert not [p for p in dest.rglob("*") if p.name.endswith(".part")]

    # A hard kill (no chance to clean up) leaves its temporary file: it never counts, and once it is old
    # it is removed; a young one may belong to a fetch running in another process and is kept.
    half = (source / victim.path).read_bytes()[: victim.size // 2]
    old_part = dest / "IML_Malaria" / f".{Path(victim.path).name}.k1ll3d.part"
    young_part = dest / "IML_Malaria" / f".{Path(victim.path).name}.runn1ng.part"
    for part in (old_part, young_part):
        part.write_bytes(half)
    os.utime(old_part, (time.time() - 2 * fetch.STALE_PART_S,) * 2)
    assert fetch.verify(dest, manifest) == problems

    monkeypatch.setattr(fetch, "_open_url", guarded)
    opened.clear()
    fetch.fetch_iml_malaria(dest, source=source, manifest=manifest, workers=1)
    assert sorted(fetched_paths(opened, manifest)) == sorted(problems)  # resumed: only what was not complete
    assert fetch.verify(dest, manifest) == {}
    assert not old_part.exists() and young_part.exists()


def test_a_cache_that_cannot_be_written_is_a_clear_error(tmp_path, source, manifest):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache's parent folder should be")
    with pytest.raises(fetch.FetchError, match="Cannot write IML-Malaria into .*GANLAB_CACHE"):
        fetch.fetch_iml_malaria(blocker / "iml_malaria", source=source, manifest=manifest)


def test_offline_the_fetcher_never_reaches_for_the_network(tmp_path, manifest, monkeypatch, opened):
    monkeypatch.setenv("GANLAB_OFFLINE", "1")
    with pytest.raises(MalariaDataError, match="GANLAB_OFFLINE is set"):
        fetch.fetch_iml_malaria(tmp_path / "copy", manifest=manifest)  # the default source: GitHub
    assert opened == [] and not (tmp_path / "copy").exists()


# ----------------------------------------------------------------------------- where Lab 3's data is
def test_the_resolution_order_of_malaria_data_path(lab3_env, source, manifest, monkeypatch, capsys, opened):
    def where(profile):
        return fetch.malaria_data_path(profile, source=source, manifest=manifest)

    sample = lab3_env.data / "malaria_sample"
    sample.mkdir()
    in_place = fetch.fetch_iml_malaria(lab3_env.data / "iml_malaria", source=source, manifest=manifest)
    student = lab3_env.work / "data" / "malaria"
    student.mkdir(parents=True)
    opened.clear()

    # 1. GANLAB_MALARIA_DATA, as given, whatever the profile
    mine = lab3_env.tmp / "M5-Malaria Dataset"
    monkeypatch.setenv("GANLAB_MALARIA_DATA", str(mine))
    assert where("smoke") == mine and where("full") == mine
    monkeypatch.delenv("GANLAB_MALARIA_DATA")
    # 2. smoke: the 4-field sample (the profile from GANLAB_PROFILE when not given)
    assert where("smoke") == sample
    monkeypatch.setenv("GANLAB_PROFILE", "smoke")
    assert where(None) == sample
    monkeypatch.delenv("GANLAB_PROFILE")
    # 3. quick and full: a complete $GANLAB_DATA/iml_malaria in place, before data/malaria
    assert where("quick") == in_place and where("full") == in_place
    # ... and only when complete
    (in_place / manifest.files[1].path).write_bytes(b"")
    assert where("quick") == Path("data") / "malaria"  # 4. the student's own copy
    assert f"Note: not using {in_place}" in capsys.readouterr().out
    student.rmdir()
    # 5. the cache: offline and empty, an error; online, fetched and verified; then used as it is
    with pytest.raises(MalariaDataError):
        where("quick")
    assert opened == []
    monkeypatch.setenv("GANLAB_OFFLINE", "0")
    cache = where("quick")
    assert cache == lab3_env.cache / "iml_malaria" and fetch.verify(cache, manifest) == {}
    assert len(opened) == len(manifest.files)
    sample.rmdir()
    assert where("smoke") == cache  # smoke without the sample: IML-Malaria too
    monkeypatch.setenv("GANLAB_OFFLINE", "1")
    assert where("full") == cache  # a complete cache is used offline
    assert len(opened) == len(manifest.files)  # never fetched again
    assert (in_place / manifest.files[1].path).read_bytes() == b""  # the damaged copy was only read


def test_offline_without_the_data_the_error_names_every_place_looked_at(lab3_env, source, manifest, monkeypatch,
                                                                         opened):
    with pytest.raises(MalariaDataError) as err:
        fetch.malaria_data_path("quick", manifest=manifest)
    message = str(err.value)
    for text in ("GANLAB_OFFLINE is set", "GANLAB_MALARIA_DATA: not set",
                 f"{lab3_env.data / 'iml_malaria'}: does not exist",
                 f"{lab3_env.work / 'data' / 'malaria'}: does not exist",
                 f"{lab3_env.cache / 'iml_malaria'} (the download cache)",
                 "malaria_sample", 'data_README.md (section "IML-Malaria")'):
        assert text in message, text
    assert opened == [] and not lab3_env.cache.exists()

    # An incomplete cache says what is wrong with it; without GANLAB_DATA, that is said.
    fetch.fetch_iml_malaria(lab3_env.cache / "iml_malaria", source=source, manifest=manifest)
    (lab3_env.cache / "iml_malaria" / manifest.files[3].path).unlink()
    monkeypatch.delenv("GANLAB_DATA")
    with pytest.raises(MalariaDataError) as err:
        fetch.malaria_data_path("full", manifest=manifest)
    assert "1 of 4 files missing or damaged" in str(err.value) and manifest.files[3].path in str(err.value)
    assert "GANLAB_DATA not set" in str(err.value)
    # The real manifest: the whole set is asked for.
    with pytest.raises(MalariaDataError, match=r"346 files, about 69 MB"):
        fetch.malaria_data_path("quick")


def test_in_colab_the_data_is_kept_on_google_drive(lab3_env, source, manifest, monkeypatch, opened, capsys):
    monkeypatch.delenv("GANLAB_CACHE")
    monkeypatch.setenv("GANLAB_OFFLINE", "0")
    mount_root = lab3_env.tmp / "drive"
    monkeypatch.setenv("GANLAB_DRIVE_MOUNT", str(mount_root))
    calls = fake_colab(monkeypatch, lambda path: (path / "MyDrive").mkdir(parents=True))
    path = fetch.malaria_data_path("quick", source=source, manifest=manifest)
    assert path == mount_root / "MyDrive" / "gan-lab" / "data" / "iml_malaria"
    assert fetch.verify(path, manifest) == {} and [path for path, _ in calls] == [str(mount_root)]
    assert "WARNING" not in capsys.readouterr().out
    fetched = len(opened)
    assert fetch.malaria_data_path("full", source=source, manifest=manifest) == path  # the next time: on Drive
    assert len(opened) == fetched and len(calls) == 1
    assert not (lab3_env.home / ".cache").exists()


@pytest.mark.parametrize("failure", ["raises", "no MyDrive"])
def test_in_colab_a_failed_mount_falls_back_to_the_runtime_disk_with_a_warning(lab3_env, source, manifest, monkeypatch,
                                                                                capsys, failure):
    monkeypatch.delenv("GANLAB_CACHE")
    monkeypatch.setenv("GANLAB_OFFLINE", "0")
    mount_root = lab3_env.tmp / "drive"
    monkeypatch.setenv("GANLAB_DRIVE_MOUNT", str(mount_root))

    def mount(path):
        if failure == "raises":
            raise TimeoutError("Timed out waiting for authorization")

    calls = fake_colab(monkeypatch, mount)
    path = fetch.malaria_data_path("quick", source=source, manifest=manifest)
    assert calls and path == lab3_env.home / ".cache" / "gan-lab" / "data" / "iml_malaria"
    assert fetch.verify(path, manifest) == {}
    out = capsys.readouterr().out
    assert "WARNING: Google Drive could not be mounted" in out and "LOST" in out and "retry the mount" in out
    assert ("Timed out waiting for authorization" if failure == "raises" else "does not exist") in out
    assert not mount_root.exists()  # nothing written where Drive should be


def test_in_colab_a_cache_set_elsewhere_never_mounts_drive(lab3_env, source, manifest, monkeypatch):
    monkeypatch.setenv("GANLAB_OFFLINE", "0")
    calls = fake_colab(monkeypatch, lambda path: pytest.fail("Drive was mounted for a cache that is not on it"))
    assert fetch.malaria_data_path("quick", source=source, manifest=manifest) == lab3_env.cache / "iml_malaria"
    assert calls == []
