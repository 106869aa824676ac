"""The stored check answers are computed from the solution notebooks, and --check catches drift."""

import json

import pytest

from helpers.checks import common, store


@pytest.fixture(scope="module")
def vanilla_answers():
    return store.compute("vanilla")


def test_stored_answers_match_the_solution_notebooks():
    assert store.main(["--check"]) == 0


def test_answers_come_from_the_notebook_code(vanilla_answers):
    stored = common.expected("vanilla")
    assert store.differences(stored, vanilla_answers) == []
    assert set(vanilla_answers["losses"]) == {"d_loss", "g_loss", "d_loss_large", "g_loss_large"}


def test_check_names_a_stale_value(tmp_path, monkeypatch, capsys, vanilla_answers):
    stale = json.loads(json.dumps(vanilla_answers))
    stale["losses"]["g_loss"] += 1e-3
    del stale["losses"]["d_loss_large"]
    (tmp_path / "vanilla.json").write_text(json.dumps(stale))
    monkeypatch.setattr(common, "CHECK_DATA", tmp_path)
    assert store.main(["--check", "--labs", "vanilla"]) == 1
    out = capsys.readouterr().out
    assert "losses.g_loss: stored" in out and "losses.d_loss_large: missing" in out


def test_write_then_check_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "CHECK_DATA", tmp_path)
    assert store.main(["--labs", "cwgan"]) == 0
    assert store.main(["--check", "--labs", "cwgan"]) == 0
    assert not (tmp_path / "vanilla.json").exists()


def test_tolerance_is_relative_not_absolute():
    assert store.differences({"x": 1000.0}, {"x": 1000.001}) == []
    assert store.differences({"x": 1.0}, {"x": 1.001}) != []
    assert store.differences({"x": [1.0, 2.0]}, {"x": [1.0]}) != []
