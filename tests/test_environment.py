"""The lock (requirements/lock.txt) is what the README's commands install and what CI tests."""
import hashlib
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement

from srcore import report

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"


def lock_pins() -> dict[str, str]:
    """name -> version of every lock line whose marker holds for this interpreter and platform."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate():
            (spec,) = req.specifier
            assert spec.operator == "==", f"{line}: the lock pins exact versions"
            pins[req.name.lower().replace("_", "-")] = spec.version
    return pins


def test_lock_pins_every_dependency_of_pyproject_exactly():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    pins = lock_pins()
    for dep in map(Requirement, wanted):
        name = dep.name.lower().replace("_", "-")
        assert name in pins, f"{dep.name} is in pyproject.toml but not in the lock"
        assert dep.specifier.contains(pins[name]), f"lock pins {name}=={pins[name]}, outside {dep}"


def test_lock_covers_cpython_310_to_312_on_linux_x86_64():
    text = LOCK.read_text()
    for minor in ("3.10", "3.11", "3.12"):
        env = {"python_version": minor, "python_full_version": f"{minor}.0", "sys_platform": "linux",
               "platform_machine": "x86_64", "platform_system": "Linux"}
        numpy = [line for line in text.splitlines() if line.startswith("numpy==")
                 and (";" not in line or Marker(line.split(";", 1)[1]).evaluate(env))]
        assert len(numpy) == 1, f"Python {minor}: expected exactly one numpy pin, got {numpy}"


@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64", reason="the lock is tested on Linux x86-64")
def test_installed_packages_are_the_locked_versions():
    """Holds in the environment `make` builds (and so in CI): the versions provenance.json reports are the lock's."""
    pins = lock_pins()
    wrong = {}
    for name in ("torch", "torchvision", "numpy", "scipy", "scikit-image", "pillow", "pandas", "pyiqa",
                 "papermill", "nbval", "pytest", "jupyterlab", "ipykernel"):
        installed = metadata.version(name)
        if installed.split("+")[0] != pins[name]:  # torch's local tag (+cu130, +cpu) names the build, not the version
            wrong[name] = (installed, pins[name])
    assert not wrong, f"installed (version, locked version): {wrong}; run `make install` or see README"


def test_environment_yml_installs_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-r requirements/lock.txt" in pip and "-e ." in pip
    conda_pkgs = [d for d in env["dependencies"] if isinstance(d, str)]
    assert all(re.match(r"^(python=3\.1[0-2]|pip)$", d) for d in conda_pkgs), \
        f"conda packages besides python and pip would not be the lock's versions: {conda_pkgs}"


def test_provenance_records_the_locks_hash_beside_the_versions(tmp_path):
    assert report.lock_sha256() == hashlib.sha256(LOCK.read_bytes()).hexdigest()
    prov = report.Results("seo_squeezesr_kd", "smoke", tmp_path / "out").provenance
    assert prov["lock_sha256"] == hashlib.sha256(LOCK.read_bytes()).hexdigest()
    assert prov["packages"]["torch"] == metadata.version("torch") and prov["torch"].startswith(metadata.version("torch"))
    assert prov["packages"]["numpy"] == metadata.version("numpy")
