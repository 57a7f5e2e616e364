"""Finding existing (banded, clean) image pairs: two parallel folders or a CSV file."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from src.data.sources import list_images
from src.utils.errors import DataError

__all__ = ["Pair", "pairs_from_folders", "pairs_from_csv"]

#: ``(key, banded_path, clean_path)``; ``key`` names the pair (used for the train/val split).
Pair = tuple[str, Path, Path]


def _keyed(root: Path) -> dict[str, Path]:
    """Images under ``root`` keyed by relative path without extension; duplicates are an error."""
    out: dict[str, Path] = {}
    for p in list_images(root):
        key = p.relative_to(root).with_suffix("").as_posix()
        if key in out:
            raise DataError(
                f"ambiguous pair key '{key}' under '{root}': both '{out[key].name}' and '{p.name}' exist; "
                "keep one file per name"
            )
        out[key] = p
    return out


def _example(keys: list[str]) -> str:
    return ", ".join(f"'{k}'" for k in keys[:3]) + (", ..." if len(keys) > 3 else "")


def pairs_from_folders(banded_dir: str | os.PathLike, clean_dir: str | os.PathLike) -> list[Pair]:
    """Match images in two folders by relative path without extension (``a/x.jpg`` <-> ``a/x.png``).

    Raises:
        DataError: a folder is missing/empty, or some images have no counterpart (counts listed).
    """
    b_root, c_root = Path(banded_dir).expanduser(), Path(clean_dir).expanduser()
    banded, clean = _keyed(b_root), _keyed(c_root)
    no_clean = sorted(set(banded) - set(clean))
    no_banded = sorted(set(clean) - set(banded))
    if no_clean or no_banded:
        parts = []
        if no_clean:
            parts.append(f"{len(no_clean)} banded image(s) have no clean match (e.g. {_example(no_clean)})")
        if no_banded:
            parts.append(f"{len(no_banded)} clean image(s) have no banded match (e.g. {_example(no_banded)})")
        raise DataError(
            f"paired folders '{b_root}' and '{c_root}' do not match: {'; '.join(parts)}; "
            "pairs are matched by relative path without extension"
        )
    return [(k, banded[k], clean[k]) for k in sorted(banded)]


def pairs_from_csv(csv_path: str | os.PathLike) -> list[Pair]:
    """Read pairs from a CSV with header columns ``banded,clean`` (paths relative to the CSV's folder,
    or absolute). The pair key is the clean path as written.

    Raises:
        DataError: the CSV is missing, lacks the columns, has no rows, or names missing files.
    """
    path = Path(csv_path).expanduser()
    if not path.is_file():
        raise DataError(f"pairs CSV '{path}' not found")
    base = path.parent
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # utf-8-sig: tolerate Excel's BOM
            reader = csv.DictReader(f)
            fields = [c.strip() for c in (reader.fieldnames or [])]
            if "banded" not in fields or "clean" not in fields:
                raise DataError(f"pairs CSV '{path}' must have header columns 'banded,clean' (found: {fields})")
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read pairs CSV '{path}': {e}") from e
    rows = [r for r in rows if r.get("banded") or r.get("clean")]
    if not rows:
        raise DataError(f"pairs CSV '{path}' has no rows")
    pairs: list[Pair] = []
    missing: list[str] = []
    for r in rows:
        b, c = r.get("banded", ""), r.get("clean", "")
        bp, cp = base / b, base / c  # an absolute path on the right replaces ``base``
        for rel, p in ((b, bp), (c, cp)):
            if not rel or not p.is_file():
                missing.append(rel or "<empty>")
        pairs.append((c, bp, cp))
    if missing:
        raise DataError(
            f"{len(missing)} path(s) in pairs CSV '{path}' are missing (e.g. {_example(missing)}); "
            "paths are relative to the CSV's folder"
        )
    keys = [k for k, _, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise DataError(f"pairs CSV '{path}' lists the same clean image more than once (e.g. {_example(dup)})")
    return pairs
