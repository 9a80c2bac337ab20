"""A non-editable install (a built wheel in a fresh venv) ships the ontology and queries and serves /gaps."""

from __future__ import annotations

import subprocess
import sys
import sysconfig

import pytest
import requests

from conftest import REPO, free_port, stop, wait_until_up


@pytest.fixture(scope="module")
def installed_python(tmp_path_factory):
    """A fresh venv with mfmkg installed from a wheel; dependencies come from the test venv via a .pth file."""
    tmp = tmp_path_factory.mktemp("install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "wheels"), str(REPO)],
                   check=True, capture_output=True)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # Dependencies are already installed in the test venv; a path entry (not a site dir) avoids its editable finder.
    with open(f"{site}/deps.pth", "w") as fh:
        fh.write(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next((tmp / "wheels").glob("mfmkg-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, str(wheel)],
                   check=True, capture_output=True)
    return py, tmp


def test_installed_package_is_not_the_source_tree(installed_python):
    py, tmp = installed_python
    out = subprocess.run([str(py), "-c", "import mfmkg.ontology, mfmkg.queries; print(mfmkg.ontology.__file__)"],
                         cwd=tmp, check=True, capture_output=True, text=True).stdout
    assert str(REPO) not in out and "site-packages" in out


def test_installed_package_serves_gaps(installed_python):
    py, tmp = installed_python
    port = free_port()
    proc = subprocess.Popen([str(py), "-m", "mfmkg", "serve", "--memory", "--port", str(port)], cwd=tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, proc=proc)
        body = requests.get(url + "/gaps.json", timeout=30).json()
        assert body["count"] >= 31 and body["uncovered"] > 0
    finally:
        stop(proc)
