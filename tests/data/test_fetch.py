"""``python -m src.data.fetch``: the split, the copy and licence step, and apt-get errors, without the network."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from PIL import Image

from src.data import fetch
from src.data.sources import Source, folder_images, split_by_photo
from src.utils.errors import DataError
from tests.conftest import compose_cfg

LOMIRI = [f"photo{i:02d}_by_Author{i % 4}.jpg" for i in range(15)]

COPYRIGHT = (
    """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: lomiri-wallpapers

Files: *
Copyright: 2018, Upstream Authors
License: Expat

"""
    + "\n".join(
        f"Files: 16.04/{name}\nCopyright: Author{i % 4}, 2018\nLicense: {'CC0-1.0' if i == 3 else 'CC-BY-4.0'}\n"
        for i, name in enumerate(LOMIRI)
    )
    + """
Files: debian/*
 AUTHORS
 16.04/.placeholder
Copyright: 2018, Dalton Durst
  2022, Mike Gabriel
License: Expat

License: CC-BY-4.0
 Attribution 4.0 International
 .
 (full text)
"""
)


def _jpeg(path: Path, seed: int, size: tuple[int, int] = (24, 32)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, size + (3,), dtype=np.uint8)
    Image.fromarray(arr).save(path, quality=90)


def _lomiri_tree(root: Path) -> Path:
    """A fake unpacked lomiri-wallpapers-16.04: photos in usr/share/backgrounds, the copyright file, a doc image."""
    for i, name in enumerate(LOMIRI):
        _jpeg(root / "usr/share/backgrounds" / name, i)
    doc = root / "usr/share/doc" / fetch.PACKAGE
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    _jpeg(doc / "screenshot.png", 99)  # documentation, not a photo
    (root / "usr/share/backgrounds/README").write_text("not an image")
    return root


def _hdr_tree(root: Path) -> Path:
    base = root / "usr/share/libjxl-testdata"
    _jpeg(base / "jxl/hdr_room.png", 1)
    _jpeg(base / "jxl/other.png", 2)  # only hdr_room.png is wanted
    _jpeg(base / "external/pngsuite/basn0g01.png", 3)
    doc = root / "usr/share/doc" / fetch.HDR_PACKAGE
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Files: *\nCopyright: the JPEG XL Project Authors\nLicense: BSD-3-clause-Google\n\n"
        "Files: external/pngsuite/*\nCopyright: Willem van Schaik, 1996, 2011\nLicense: ISC-License\n"
    )
    return root


class FakeApt:
    """An injectable extractor that builds fake package trees and counts calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, package: str, workdir: Path) -> Path:
        self.calls.append(package)
        tree = workdir / f"{package}.tree"
        return _lomiri_tree(tree) if package == fetch.PACKAGE else _hdr_tree(tree)


def _fake_skimage() -> list[Source]:
    rng = np.random.default_rng(0)
    names = ["astronaut", "camera", "coffee", "chelsea", "rocket", "retina"]
    return [Source(f"skimage/{n}", rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)) for n in names]


@pytest.fixture
def fetched(tmp_path: Path) -> tuple[Path, FakeApt]:
    apt = FakeApt()
    final = fetch.fetch_photos(tmp_path / "data", extract=apt, load_skimage=_fake_skimage)
    return final, apt


# --------------------------------------------------------------------------------------------------- split
def _names() -> list[str]:
    return [f"lomiri/{n}" for n in LOMIRI] + [f"skimage/{n}.png" for n in ("a", "b", "c", "d", "e", "f", "g")]


def test_split_is_by_photo_deterministic_and_disjoint():
    names = _names()
    split = fetch.make_split(names)
    assert split == fetch.make_split(list(reversed(names)))  # order of discovery does not matter
    sides = [set(split[k]) for k in ("train", "val", "test")]
    assert sum(map(len, sides)) == len(names) and set().union(*sides) == set(names)  # each photo exactly once
    assert round(len(LOMIRI) * fetch.TEST_FRACTION) == len(split["test"]) and split["val"]
    assert not any(n.startswith("skimage/") for n in split["test"])  # data=default trains on all of them


def test_split_of_one_group_does_not_move_when_another_is_added():
    before = fetch.make_split(_names())
    after = fetch.make_split(_names() + ["hdr/hdr_room.png"])
    assert after["test"] == before["test"]  # the held-out photos stay held out
    assert "hdr/hdr_room.png" not in after["test"]  # a single-photo group always trains


# --------------------------------------------------------------------------------------------------- copy + licences
def test_fetch_writes_photos_split_and_licences(fetched, tmp_path):
    final, apt = fetched
    assert apt.calls == [fetch.PACKAGE]
    split = json.loads((final / "split.json").read_text())
    listed = split["train"] + split["val"] + split["test"]
    on_disk = sorted(p.relative_to(final).as_posix() for p in final.rglob("*") if p.suffix in (".jpg", ".png"))
    assert sorted(listed) == on_disk and len(listed) == len(LOMIRI) + 6
    assert all(p.startswith("test/lomiri/") for p in split["test"])
    assert all(p.startswith("train/") for p in split["train"] + split["val"])
    assert set(split["sha256"]) == set(listed)
    # wallpapers are copied byte for byte; the skimage photos are PNGs of the loaded pixels, readable by others
    assert next(tmp_path.rglob("photo00_by_Author0.jpg")).is_relative_to(final)  # the download folder is gone
    first = next(p for p in listed if p.endswith("photo00_by_Author0.jpg"))
    ref = tmp_path / "ref"
    _lomiri_tree(ref)
    assert (final / first).read_bytes() == (ref / "usr/share/backgrounds/photo00_by_Author0.jpg").read_bytes()
    png = final / "train/skimage/astronaut.png"
    assert np.array_equal(np.asarray(Image.open(png)), _fake_skimage()[0].pixels)
    umask = os.umask(0)
    os.umask(umask)
    assert png.stat().st_mode & 0o777 == 0o666 & ~umask  # like any file written with open(), not 0600
    assert not any(p.name.startswith(".") for p in final.parent.iterdir())  # no temp folders left

    md = (final / "LICENSES.md").read_text()
    row = next(ln for ln in md.splitlines() if "photo03_by_Author3.jpg" in ln)
    assert "CC0-1.0" in row and "Author3, 2018" in row and fetch.PACKAGE in row
    row = next(ln for ln in md.splitlines() if "photo01_by_Author1.jpg" in ln)
    assert "CC-BY-4.0" in row and "Expat" not in row  # the file's own stanza beats "Files: *"
    assert "| `train/skimage/astronaut.png` | scikit-image" in md
    assert (final / "licenses" / f"{fetch.PACKAGE}.copyright").read_text() == COPYRIGHT
    assert "screenshot" not in md  # documentation images are not photos


def test_validation_split_is_what_the_datamodule_holds_out(fetched):
    final, _ = fetched
    split = json.loads((final / "split.json").read_text())
    train, val = split_by_photo(folder_images(final / "train"), fetch.VAL_FRACTION)
    assert sorted(f"train/{s.name}" for s in val) == split["val"]
    assert sorted(f"train/{s.name}" for s in train) == sorted(split["train"])


def test_photos_config_points_at_the_fetched_folders(tmp_path):
    cfg = compose_cfg("train", ["experiment=fft_indi", "data=photos"], tmp_path)
    GlobalHydra.instance().clear()
    data = OmegaConf.to_container(cfg.data, resolve=True)
    assert data["val_fraction"] == fetch.VAL_FRACTION
    assert data["root"] == str(tmp_path / "data/photos/train")
    assert data["test"] == {"root": str(tmp_path / "data/photos/test")}


def test_fetch_is_idempotent_and_force_rebuilds_atomically(fetched, capsys):
    final, apt = fetched
    before = (final / "split.json").read_text()
    fetch.fetch_photos(final.parent, extract=apt, load_skimage=_fake_skimage)
    assert apt.calls == [fetch.PACKAGE]  # present: nothing downloaded
    assert "already exists" in capsys.readouterr().err

    def broken(package: str, workdir: Path) -> Path:
        raise DataError("apt-get download failed")

    with pytest.raises(DataError):
        fetch.fetch_photos(final.parent, force=True, extract=broken, load_skimage=_fake_skimage)
    assert (final / "split.json").read_text() == before  # a failed rebuild keeps the old folder
    assert sorted(p.name for p in final.parent.iterdir()) == ["photos"]

    fetch.fetch_photos(final.parent, force=True, extract=apt, load_skimage=_fake_skimage)
    assert apt.calls == [fetch.PACKAGE, fetch.PACKAGE] and (final / "split.json").read_text() == before


def test_with_hdr_adds_only_hdr_room(tmp_path):
    apt = FakeApt()
    final = fetch.fetch_photos(tmp_path, with_hdr=True, extract=apt, load_skimage=_fake_skimage)
    assert apt.calls == [fetch.PACKAGE, fetch.HDR_PACKAGE]
    assert sorted(p.name for p in final.rglob("*.png") if "hdr" in p.parts) == ["hdr_room.png"]
    md = (final / "LICENSES.md").read_text()
    row = next(ln for ln in md.splitlines() if "hdr_room.png" in ln)
    assert "BSD-3-clause-Google" in row and "JPEG XL Project Authors" in row
    assert (final / "licenses" / f"{fetch.HDR_PACKAGE}.copyright").is_file()


def test_licence_matching_follows_dep5():
    stanzas = fetch.parse_copyright(COPYRIGHT)
    assert stanzas[-1]["files"] == "debian/* AUTHORS 16.04/.placeholder"
    assert stanzas[-1]["copyright"] == "2018, Dalton Durst 2022, Mike Gabriel"
    assert fetch.licence_for("usr/share/backgrounds/photo03_by_Author3.jpg", stanzas) == ("Author3, 2018", "CC0-1.0")
    assert fetch.licence_for("usr/share/backgrounds/unlisted.jpg", stanzas) == ("2018, Upstream Authors", "Expat")
    jxl = fetch.parse_copyright(
        "Files: *\nCopyright: A\nLicense: BSD\n\nFiles: external/pngsuite/*\nCopyright: B\nLicense: ISC\n"
    )
    assert fetch.licence_for("usr/share/libjxl-testdata/jxl/hdr_room.png", jxl) == ("A", "BSD")
    assert fetch.licence_for("usr/share/libjxl-testdata/external/pngsuite/x.png", jxl) == ("B", "ISC")


def test_package_without_copyright_file_is_refused(tmp_path):
    tree = _lomiri_tree(tmp_path / "t")
    (tree / "usr/share/doc" / fetch.PACKAGE / "copyright").unlink()
    with pytest.raises(DataError, match="copyright"):
        fetch.package_photos(tree, fetch.PACKAGE, "lomiri")


# --------------------------------------------------------------------------------------------------- apt-get
def test_missing_apt_get_is_a_one_line_data_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fetch.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match=r"apt-get not found.*apt-get download lomiri-wallpapers-16.04"):
        fetch.apt_extract(fetch.PACKAGE, tmp_path)
    assert fetch.main(["--dest", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: apt-get not found") and "--deb" in err[-1]
    assert not (tmp_path / "data" / "photos").exists()


def _fake_subprocess(monkeypatch, fail_downloads: int = 0) -> list[list[str]]:
    """Stand-ins for apt-get/dpkg: the first ``fail_downloads`` downloads fail; later ones write a .deb;
    ``dpkg -x`` unpacks a fake tree."""
    calls: list[list[str]] = []
    monkeypatch.setattr(fetch.shutil, "which", lambda name: f"/usr/bin/{name}")

    def run(cmd, cwd=None, **kw):  # noqa: ANN001, ANN003
        calls.append(list(cmd))
        if cmd[:2] == ["apt-get", "download"]:
            if sum(c[:2] == ["apt-get", "download"] for c in calls) <= fail_downloads:
                return subprocess.CompletedProcess(cmd, 100, "", "W: x\nE: Unable to locate package " + cmd[2])
            (Path(cwd) / f"{cmd[2]}_1.0_all.deb").write_bytes(b"!<arch>\n")
        elif cmd[:2] == ["dpkg", "-x"]:
            assert Path(cmd[2]).is_absolute() and Path(cmd[3]).is_absolute()
            _lomiri_tree(Path(cmd[3]))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(fetch.subprocess, "run", run)
    return calls


def test_apt_extract_downloads_then_unpacks(tmp_path, monkeypatch):
    calls = _fake_subprocess(monkeypatch)
    tree = fetch.apt_extract(fetch.PACKAGE, tmp_path)
    assert (tree / "usr/share/backgrounds" / LOMIRI[0]).is_file()
    assert [c[:2] for c in calls] == [["apt-get", "download"], ["dpkg", "-x"]]


def test_stale_package_lists_are_updated_once_as_root(tmp_path, monkeypatch):
    calls = _fake_subprocess(monkeypatch, fail_downloads=1)
    monkeypatch.setattr(fetch.os, "geteuid", lambda: 0)
    fetch.apt_extract(fetch.PACKAGE, tmp_path)
    assert [c[:2] for c in calls] == [
        ["apt-get", "download"],
        ["apt-get", "update"],
        ["apt-get", "download"],
        ["dpkg", "-x"],
    ]


def test_failed_download_names_the_manual_command(tmp_path, monkeypatch):
    calls = _fake_subprocess(monkeypatch, fail_downloads=5)
    monkeypatch.setattr(fetch.os, "geteuid", lambda: 1000)  # not root: no apt-get update attempt
    with pytest.raises(DataError) as e:
        fetch.apt_extract(fetch.PACKAGE, tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "Unable to locate package" in msg and "sudo apt-get update" in msg
    assert [c[:2] for c in calls] == [["apt-get", "download"]]
