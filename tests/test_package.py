"""`pip install .` gives a working `helpers` with its package data, and nothing of the solutions."""

import shutil
import subprocess
import sys
import zipfile

from conftest import REPO_ROOT


def test_the_wheel_installs_helpers_with_its_data_and_no_notebook(tmp_path):
    src = tmp_path / "src"  # build from a copy: the build writes build/ and *.egg-info beside its sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "malaria_test.py"):
        shutil.copy2(REPO_ROOT / name, src / name)
    shutil.copytree(REPO_ROOT / "helpers", src / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "dist"), "-q"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("gan_lab-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for data in ("helpers/weights/mnist_classifier.pt", "helpers/weights/fashion_mnist_classifier.pt",
                 "helpers/checks/answers/vanilla.json", "helpers/checks/answers/malaria.json", "malaria_test.py"):
        assert data in names, f"{data} is missing from the wheel"
    sources = {str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "helpers").rglob("*.py")}
    assert sources <= set(names), sorted(sources - set(names))
    assert not [n for n in names if n.endswith(".ipynb") or n.startswith(("templates/", "tests/"))]

    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel), "-q"],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    probe = ("import helpers, helpers.classifiers as c, helpers.checks.common as k\n"
             "assert helpers.__file__.startswith(%r), helpers.__file__\n"
             "c.load_classifier('mnist'); k.expected('vanilla'); print('ok', helpers.__version__)" % str(site))
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0 and run.stdout.startswith("ok 0."), run.stderr[-2000:]
