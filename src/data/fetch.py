"""Real training photos by package name: ``python -m src.data.fetch [--dest data] [--force] [--with-hdr]``.

Downloads Debian's ``lomiri-wallpapers-16.04`` (15 large CC-BY / CC-BY-SA / CC0 photos, a 15.8 MB .deb) with
``apt-get download`` into a temporary folder (nothing is installed), unpacks it with ``dpkg -x``, adds
scikit-image's CC0 / public-domain photos from its wheel, and writes under ``DEST/photos``::

    train/lomiri/*.jpg, train/skimage/*.png    training + validation photos (``data.root`` of data=photos)
    test/lomiri/*.jpg                          held-out test photos (``data.test.root``, the quality benchmark)
    split.json                                 {"train": [...], "val": [...], "test": [...]} relative paths
    LICENSES.md, licenses/<package>.copyright  each file's source and licence; the packages' copyright files

The split is by photo and deterministic (a hash of the file name, :func:`src.data.sources.val_names`), so
the test photos are the same on every machine. Validation photos stay inside ``train/`` because the
datamodule draws its validation set from ``data.root`` itself: ``split.json`` lists under ``"val"`` exactly
the photos it holds out with ``data.val_fraction`` = :data:`VAL_FRACTION`. scikit-image's photos are never
test photos: the embedded default data (``data=default``) trains on all of them.

``--with-hdr`` also fetches ``libjxl-testdata`` (a 55.8 MB .deb) for one true 16-bit photo,
``jxl/hdr_room.png`` (676 x 449), copied to ``train/hdr/``. Off by default: a large download for one photo.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.data.image_io import write_image
from src.data.sources import SKIMAGE_PHOTOS, Source, skimage_photos, val_names
from src.utils.errors import DataError, DebandError

__all__ = [
    "PACKAGE",
    "HDR_PACKAGE",
    "TEST_FRACTION",
    "VAL_FRACTION",
    "Photo",
    "Extractor",
    "apt_extract",
    "package_photos",
    "parse_copyright",
    "licence_for",
    "make_split",
    "fetch_photos",
    "main",
]

PACKAGE = "lomiri-wallpapers-16.04"
HDR_PACKAGE = "libjxl-testdata"
HDR_MEMBER = "jxl/hdr_room.png"  # path inside the package's data folder (usr/share/libjxl-testdata/)
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Share of the test-eligible photos (not scikit-image's) held out for testing: 4 of the 15 wallpapers,
#: ~14 % of all 29 photos.
TEST_FRACTION = 0.25
#: Share of ``train/`` the datamodule holds out for validation (4 of 25, ~14 % of all photos).
#: Must equal ``data.val_fraction`` in conf/data/photos.yaml (a test checks it).
VAL_FRACTION = 0.18
#: Groups (first folder of a photo's name) never put in the test split.
TRAIN_ONLY_GROUPS = frozenset({"skimage"})


@dataclass(frozen=True)
class Photo:
    """One photo to write: ``name`` = ``<group>/<file>``; either ``src`` (copied byte for byte) or
    ``pixels`` (``(H, W, 3)`` uint8/uint16, written as PNG); ``source``/``copyright``/``licence`` for LICENSES.md."""

    name: str
    source: str
    copyright: str
    licence: str
    src: Path | None = None
    pixels: np.ndarray | None = None

    @property
    def group(self) -> str:
        return self.name.split("/", 1)[0]


#: ``extract(package, workdir) -> root of the unpacked package tree``; injectable for tests.
Extractor = Callable[[str, Path], Path]


# --------------------------------------------------------------------------------------------------- download
def _manual_hint(package: str) -> str:
    return (
        f"download it by hand with `apt-get download {package}` (after `sudo apt-get update`) on a "
        f"Debian/Ubuntu machine and pass the file with --deb {package}_*.deb"
    )


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as e:  # e.g. the binary vanished or is not executable
        return subprocess.CompletedProcess(cmd, 127, "", str(e))


def _last_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The most telling line of a failed apt/dpkg call (its ``E:`` line if any), for a one-line error."""
    lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("E:")]
    return (errors or lines or [f"exit status {proc.returncode}"])[-1]


def _download_deb(package: str, workdir: Path) -> Path:
    """``apt-get download package`` into ``workdir``; one ``apt-get update`` and retry if the lists are stale."""
    if shutil.which("apt-get") is None:
        raise DataError(f"apt-get not found (this fetch needs a Debian/Ubuntu system): {_manual_hint(package)}")
    proc = _run(["apt-get", "download", package], workdir)
    if proc.returncode != 0 and hasattr(os, "geteuid") and os.geteuid() == 0:
        # "Unable to locate package" / 404 both come from stale or missing package lists
        _run(["apt-get", "update"], workdir)
        proc = _run(["apt-get", "download", package], workdir)
    if proc.returncode != 0:
        raise DataError(f"apt-get download {package} failed ({_last_error_line(proc)}); {_manual_hint(package)}")
    debs = sorted(workdir.glob(f"{package}_*.deb"))
    if not debs:
        raise DataError(f"apt-get download {package} wrote no .deb file; {_manual_hint(package)}")
    return debs[-1]


def _unpack_deb(deb: Path, dest: Path) -> Path:
    """``dpkg -x deb dest`` (the data files only, no maintainer scripts run)."""
    if shutil.which("dpkg") is None:
        raise DataError(f"dpkg not found: cannot unpack '{deb}' (run `dpkg -x {deb.name} DIR` on a Debian system)")
    proc = _run(["dpkg", "-x", str(deb.absolute()), str(dest.absolute())], deb.parent)
    if proc.returncode != 0:
        raise DataError(f"dpkg -x {deb.name} failed: {_last_error_line(proc)}")
    return dest


def apt_extract(package: str, workdir: Path, deb: Path | None = None) -> Path:
    """Download ``package`` (or use the given ``deb``) and unpack it under ``workdir``; returns the tree root."""
    if deb is None:
        deb = _download_deb(package, workdir)
    elif not deb.is_file():
        raise DataError(f"--deb file not found: '{deb}'")
    print(f"  {deb.name}: {deb.stat().st_size / 1e6:.1f} MB", file=sys.stderr)
    return _unpack_deb(deb, workdir / f"{package}.tree")


# --------------------------------------------------------------------------------------------------- licences
def parse_copyright(text: str) -> list[dict[str, str]]:
    """Stanzas of a machine-readable debian/copyright (DEP-5) file: ``{"files", "copyright", "license"}``,
    values with continuation lines joined by spaces; ``license`` is the short name (its first line)."""
    stanzas: list[dict[str, str]] = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, list[str]] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key is not None:
                fields[key].append(line.strip())
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = [value.strip()]
        if "files" in fields:
            stanzas.append(
                {
                    "files": " ".join(v for v in fields["files"] if v),
                    "copyright": " ".join(v for v in fields.get("copyright", []) if v and v != "."),
                    "license": (fields.get("license") or [""])[0],
                }
            )
    return stanzas


def licence_for(installed: str, stanzas: Iterable[dict[str, str]]) -> tuple[str, str]:
    """``(copyright, licence)`` of the file at ``installed`` (its path in the package tree), per DEP-5.

    DEP-5 patterns name paths in the *source* tree (``16.04/x.jpg``), which the package may install
    elsewhere (``usr/share/backgrounds/x.jpg``), so a pattern matches when it globs a trailing part of
    the installed path, or when its file name (without wildcards) equals the file's. The last match wins.
    """
    parts = installed.strip("/").split("/")
    suffixes = ["/".join(parts[i:]) for i in range(len(parts))]
    found = ("unknown", "unknown (see the package's copyright file)")
    for st in stanzas:
        for pattern in st["files"].split():
            base = pattern.rsplit("/", 1)[-1]
            exact_name = not any(c in base for c in "*?[") and base == parts[-1]
            if exact_name or any(fnmatch.fnmatchcase(s, pattern) for s in suffixes):
                found = (st["copyright"] or "unknown", st["license"] or "unknown")
    return found


def _skimage_licence(name: str) -> str:
    """The licence sentence of ``skimage.data.<name>``'s docstring (where scikit-image documents it)."""
    try:
        import skimage.data

        doc = inspect.getdoc(getattr(skimage.data, name)) or ""
    except Exception:  # noqa: BLE001 - only documentation: fall back to the module-level statement
        doc = ""
    # drop numpydoc section headers ("Notes" over a "-----" line) so they do not prefix the sentence
    doc = re.sub(r"^[^\n]*\n\s*-{3,}\s*$", "", doc, flags=re.MULTILINE)
    for para in re.split(r"\n\s*\n", doc):
        text = " ".join(para.split())
        if re.search(r"CC0|public domain|copyright", text, re.IGNORECASE):
            return text
    return "CC0 / public domain (see SKIMAGE_PHOTOS in src/data/sources.py)"


# --------------------------------------------------------------------------------------------------- photos
def package_photos(tree: Path, package: str, group: str, only: str | None = None) -> tuple[list[Photo], Path]:
    """The photos (jpg/jpeg/png outside ``usr/share/doc``) of an unpacked package tree, with their licences.

    ``only``: keep just the file whose path ends with this (e.g. ``jxl/hdr_room.png``).
    Returns the photos (sorted by name) and the package's copyright file.
    """
    copyright_file = tree / "usr/share/doc" / package / "copyright"
    if not copyright_file.is_file():
        raise DataError(f"{package}: no usr/share/doc/{package}/copyright in the package; refusing unlicensed files")
    stanzas = parse_copyright(copyright_file.read_text(encoding="utf-8", errors="replace"))
    photos = []
    for p in sorted(tree.rglob("*")):
        rel = p.relative_to(tree).as_posix()
        if not p.is_file() or p.suffix.lower() not in PHOTO_SUFFIXES or rel.startswith("usr/share/doc/"):
            continue
        if only is not None and not rel.endswith(only):
            continue
        holder, licence = licence_for(rel, stanzas)
        photos.append(Photo(f"{group}/{p.name}", f"Debian package {package} (/{rel})", holder, licence, src=p))
    if not photos:
        raise DataError(f"{package}: no photos found in the package" + (f" (looked for {only})" if only else ""))
    names = [ph.name for ph in photos]
    if len(set(names)) != len(names):
        raise DataError(f"{package}: two photos share a file name; cannot flatten them into {group}/")
    return sorted(photos, key=lambda ph: ph.name), copyright_file


def _skimage(sources: list[Source]) -> list[Photo]:
    import skimage

    out = []
    for s in sources:
        short = s.name.split("/", 1)[-1]
        file = SKIMAGE_PHOTOS.get(short, "?")
        out.append(
            Photo(
                f"skimage/{short}.png",
                f"scikit-image {skimage.__version__} (skimage/data/{file})",
                "see the licence note",
                _skimage_licence(short),
                pixels=s.pixels,
            )
        )
    return out


# --------------------------------------------------------------------------------------------------- split
def make_split(
    names: Iterable[str], test_fraction: float = TEST_FRACTION, val_fraction: float = VAL_FRACTION
) -> dict[str, list[str]]:
    """Deterministic split of photo names (``<group>/<file>``) into train / val / test, by photo.

    Test: per group (so adding a group, e.g. the HDR photo, moves no other photo), :func:`val_names`
    picks ``round(n * test_fraction)`` photos by a hash of the name; :data:`TRAIN_ONLY_GROUPS` never go
    to test. Val: the photos the datamodule holds out of the rest with ``val_fraction`` (the same call it
    makes: :func:`src.data.sources.split_by_photo` on names relative to ``train/``).
    """
    names = sorted(set(names))
    test: set[str] = set()
    for group in sorted({n.split("/", 1)[0] for n in names} - TRAIN_ONLY_GROUPS):
        test |= val_names([n for n in names if n.split("/", 1)[0] == group], test_fraction)
    pool = [n for n in names if n not in test]
    val = val_names(pool, val_fraction)
    return {"train": [n for n in pool if n not in val], "val": sorted(val), "test": sorted(test)}


# --------------------------------------------------------------------------------------------------- writing
def _write_photo(photo: Photo, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if photo.src is not None:
        shutil.copyfile(photo.src, path)  # the original bytes: no re-encoding
        return
    assert photo.pixels is not None
    write_image(path, photo.pixels, bit_depth=16 if photo.pixels.dtype == np.uint16 else 8)
    os.chmod(path, 0o666 & ~_umask())  # write_image's atomic temp file is created 0600


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _licences_md(photos: list[Photo], where: dict[str, str], packages: list[str]) -> str:
    lines = [
        "# Photo licences",
        "",
        "Written by `python -m src.data.fetch`. The full licence texts are in the packages' copyright files",
        f"under `licenses/` ({', '.join(f'`{p}.copyright`' for p in packages)}); scikit-image's photos are",
        "documented in the docstrings of `skimage.data.<name>`. CC-BY / CC-BY-SA photos need attribution",
        "(author, licence, link) wherever they or images derived from them are published.",
        "",
        "| file | source | copyright | licence |",
        "|---|---|---|---|",
    ]
    for ph in sorted(photos, key=lambda p: where[p.name]):
        cells = [f"`{where[ph.name]}`", ph.source, ph.copyright, ph.licence]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _build(out: Path, photos: list[Photo], copyrights: dict[str, Path]) -> dict[str, list[str]]:
    """Write every photo, split.json, LICENSES.md and licenses/ into the (temporary) folder ``out``."""
    split = make_split(ph.name for ph in photos)
    side = {n: "test" if n in split["test"] else "train" for n in (ph.name for ph in photos)}
    where = {ph.name: f"{side[ph.name]}/{ph.name}" for ph in photos}
    for ph in photos:
        _write_photo(ph, out / where[ph.name])
    (out / "licenses").mkdir()
    for pkg, file in copyrights.items():
        shutil.copyfile(file, out / "licenses" / f"{pkg}.copyright")
    (out / "LICENSES.md").write_text(_licences_md(photos, where, list(copyrights)), encoding="utf-8")
    rel = {k: [f"{'test' if k == 'test' else 'train'}/{n}" for n in v] for k, v in split.items()}
    meta = {
        **rel,
        "val_fraction": VAL_FRACTION,
        "test_fraction": TEST_FRACTION,
        "note": (
            "paths are relative to this folder; 'val' photos live in train/ because the datamodule holds "
            "them out of data.root itself (data.val_fraction, by a hash of the name)"
        ),
        "sha256": {where[ph.name]: _sha256(out / where[ph.name]) for ph in photos},
    }
    (out / "split.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return rel


def _install(tmp: Path, dest: Path) -> None:
    """Move the finished folder into place; an existing one is replaced only once the new one is whole."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except BaseException:
        if old is not None:
            os.replace(old, dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def fetch_photos(
    dest: str | os.PathLike = "data",
    force: bool = False,
    with_hdr: bool = False,
    extract: Extractor = apt_extract,
    load_skimage: Callable[[], list[Source]] = skimage_photos,
) -> Path:
    """Build ``dest/photos`` (see the module docstring); returns its path.

    Idempotent: an existing ``dest/photos/split.json`` means done, unless ``force``. Atomic: everything is
    written into a temporary folder next to it and renamed at the end, so an interrupted fetch leaves
    either the old folder or nothing. ``extract``/``load_skimage`` are injectable for tests.

    Raises:
        DataError: apt-get/dpkg missing, the download failed, or the package holds no photos.
    """
    dest = Path(dest).expanduser().absolute()  # apt-get/dpkg run in other working folders
    final = dest / "photos"
    if (final / "split.json").is_file() and not force:
        have_hdr = (final / "train" / "hdr").is_dir() or (final / "test" / "hdr").is_dir()
        hint = " (rerun with --force --with-hdr to add the HDR photo)" if with_hdr and not have_hdr else ""
        print(f"{final} already exists: nothing to do (--force rebuilds it){hint}", file=sys.stderr)
        return final
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create '{dest}': {e.strerror or e}") from e
    with tempfile.TemporaryDirectory(prefix=".photos-", dir=dest) as tmp_s:
        tmp = Path(tmp_s)
        work, out = tmp / "download", tmp / "photos"
        work.mkdir()
        out.mkdir()
        print(f"fetching {PACKAGE} with apt-get", file=sys.stderr)
        photos, copyright_file = package_photos(extract(PACKAGE, work), PACKAGE, "lomiri")
        copyrights = {PACKAGE: copyright_file}
        if with_hdr:
            print(f"fetching {HDR_PACKAGE} (a ~56 MB download) for {HDR_MEMBER}", file=sys.stderr)
            hdr, hdr_copyright = package_photos(extract(HDR_PACKAGE, work), HDR_PACKAGE, "hdr", only=HDR_MEMBER)
            photos += hdr
            copyrights[HDR_PACKAGE] = hdr_copyright
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            photos += _skimage(load_skimage())
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
        _build(out, photos, copyrights)
        _install(out, final)
    return final


# --------------------------------------------------------------------------------------------------- CLI
def _summary(final: Path) -> str:
    split = json.loads((final / "split.json").read_text(encoding="utf-8"))
    total = sum(f.stat().st_size for f in final.rglob("*") if f.is_file())
    counts = ", ".join(f"{len(split[k])} {k}" for k in ("train", "val", "test"))
    return (
        f"{final}: {counts} photos, {total / 1e6:.1f} MB; licences in {final / 'LICENSES.md'}\n"
        f"train on them with: python -m src.train experiment=fft_indi data=photos"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m src.data.fetch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dest", default="data", help="data folder; the photos go to DEST/photos (default: data)")
    parser.add_argument("--force", action="store_true", help="rebuild DEST/photos even if it exists")
    parser.add_argument(
        "--with-hdr",
        action="store_true",
        help=f"also fetch {HDR_PACKAGE} (a ~56 MB download) for one true 16-bit photo, {HDR_MEMBER}",
    )
    parser.add_argument(
        "--deb",
        type=Path,
        default=None,
        help=f"use this already downloaded {PACKAGE}_*.deb instead of apt-get download",
    )
    args = parser.parse_args(argv)

    def extract(package: str, workdir: Path) -> Path:
        return apt_extract(package, workdir, deb=args.deb if package == PACKAGE else None)

    try:
        final = fetch_photos(args.dest, force=args.force, with_hdr=args.with_hdr, extract=extract)
        print(_summary(final))
    except DebandError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
