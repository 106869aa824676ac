"""A fake ``google.colab`` for tests: Drive mounts run a test's function, never touch /content."""

import sys
import types
from pathlib import Path


def fake_colab(monkeypatch, mount) -> list[tuple[str, dict]]:
    """Install a ``google.colab`` whose ``drive.mount(path, **kwargs)`` runs ``mount(Path(path))``.

    Returns the list of calls, ``(path, kwargs)`` each, filled as they happen.
    """
    calls: list[tuple[str, dict]] = []

    def recorded(path, **kwargs):
        calls.append((path, kwargs))
        return mount(Path(path))

    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=recorded)
    google = types.ModuleType("google")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    return calls
