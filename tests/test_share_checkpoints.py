"""checkpoint_links.txt and the helper that says which checkpoint files to share."""

from helpers.course.share_checkpoints import (LINKS_FILE, PLACEHOLDER, SHARED_LABS, checkpoint_files, link_problems,
                                       read_links, report)


def test_links_file_has_one_placeholder_per_lab():
    links = read_links(LINKS_FILE)
    assert set(links) == set(SHARED_LABS) == {"vanilla", "cwgan"}
    assert all(v == PLACEHOLDER for v in links.values())
    assert "python -m helpers.course.share_checkpoints" in LINKS_FILE.read_text()
    assert len(link_problems(links)) == 2


def test_link_problems():
    ok = {"vanilla": "https://drive.google.com/drive/folders/abc", "cwgan": "https://drive.google.com/drive/folders/x"}
    assert link_problems(ok) == []
    assert link_problems({**ok, "cwgan": "my drive"}) == ["cwgan: 'my drive' is not a Google Drive link (https://drive.google.com/...)"]
    assert link_problems({"vanilla": ok["vanilla"]})[0].startswith("cwgan: no link yet")


def test_lists_the_full_profile_files_of_each_lab(tmp_path, monkeypatch):
    (tmp_path / "vanilla").mkdir()
    (tmp_path / "vanilla" / "last.pt").write_bytes(b"0" * 2_000_000)
    (tmp_path / "cwgan-smoke").mkdir()  # a smoke run's folder is not the one to share
    (tmp_path / "cwgan-smoke" / "last.pt").write_bytes(b"0")
    monkeypatch.setenv("GANLAB_CHECKPOINTS", str(tmp_path))
    vanilla, cwgan = checkpoint_files()
    assert vanilla.folder == tmp_path / "vanilla" and [p.name for p in vanilla.present] == ["last.pt"]
    assert cwgan.folder == tmp_path / "cwgan" and cwgan.present == [] and cwgan.missing == ["last.pt", "best.pt"]
    text = report()
    assert f"vanilla: share the folder {tmp_path / 'vanilla'}" in text and "MyDrive/gan-lab/cwgan" in text
    assert "2.0 MB" in text and "no link yet" in text
