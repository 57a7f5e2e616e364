"""The installed package carries what it needs outside a checkout: Hydra configs and the shipped weights."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from src.utils.hydra_utils import CONFIG_PATH

ROOT = Path(__file__).resolve().parents[2]


def test_config_path_is_the_checkout_conf() -> None:
    assert Path(CONFIG_PATH) == ROOT / "conf"
    assert (Path(CONFIG_PATH) / "train.yaml").is_file()


@pytest.mark.slow
def test_wheel_ships_every_config_and_the_weights(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT), "-w"]
    subprocess.run([*cmd, str(tmp_path)], check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {f"src/conf/{p.relative_to(ROOT / 'conf').as_posix()}" for p in (ROOT / "conf").rglob("*.yaml")}
    assert configs and configs <= names, sorted(configs - names)[:5]
    assert "src/weights/default.pt" in names
    assert "src/weights/contour_gate.pt" in names
    assert "src/utils/hydra_utils.py" in names
