"""Pair discovery from two folders or a CSV."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from src.data.pairs import pairs_from_csv, pairs_from_folders
from src.utils.errors import DataError


def _save(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)


def test_folders_match_by_relative_path_without_extension(tmp_path):
    for rel_b, rel_c in [("a.jpg", "a.png"), ("sub/b.png", "sub/b.tif"), ("c.png", "c.png")]:
        _save(tmp_path / "banded" / rel_b)
        _save(tmp_path / "clean" / rel_c)
    pairs = pairs_from_folders(tmp_path / "banded", tmp_path / "clean")
    assert [k for k, _, _ in pairs] == ["a", "c", "sub/b"]
    assert pairs[2][1].name == "b.png" and pairs[2][2].name == "b.tif"


def test_folders_mismatch_lists_counts(tmp_path):
    for name in ["a", "b", "c"]:
        _save(tmp_path / "banded" / f"{name}.png")
    _save(tmp_path / "clean" / "a.png")
    _save(tmp_path / "clean" / "z.png")
    with pytest.raises(DataError, match=r"2 banded image\(s\) have no clean match.*1 clean image\(s\) have no banded"):
        pairs_from_folders(tmp_path / "banded", tmp_path / "clean")


def test_folders_ambiguous_and_empty(tmp_path):
    _save(tmp_path / "banded" / "a.png")
    _save(tmp_path / "banded" / "a.jpg")
    _save(tmp_path / "clean" / "a.png")
    with pytest.raises(DataError, match="ambiguous"):
        pairs_from_folders(tmp_path / "banded", tmp_path / "clean")
    with pytest.raises(DataError, match="no images found"):
        pairs_from_folders(tmp_path / "clean", tmp_path / "empty")


def test_csv_relative_paths(tmp_path):
    _save(tmp_path / "b" / "1.png")
    _save(tmp_path / "c" / "1.png")
    _save(tmp_path / "b" / "2.png")
    _save(tmp_path / "c" / "2.png")
    (tmp_path / "pairs.csv").write_text("banded,clean\nb/1.png,c/1.png\n b/2.png , c/2.png \n\n")
    pairs = pairs_from_csv(tmp_path / "pairs.csv")
    assert [(k, b.name, c.parent.name) for k, b, c in pairs] == [("c/1.png", "1.png", "c"), ("c/2.png", "2.png", "c")]


def test_csv_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        pairs_from_csv(tmp_path / "missing.csv")
    (tmp_path / "cols.csv").write_text("noisy,target\na,b\n")
    with pytest.raises(DataError, match="banded,clean"):
        pairs_from_csv(tmp_path / "cols.csv")
    (tmp_path / "empty.csv").write_text("banded,clean\n")
    with pytest.raises(DataError, match="no rows"):
        pairs_from_csv(tmp_path / "empty.csv")
    _save(tmp_path / "ok.png")
    (tmp_path / "miss.csv").write_text("banded,clean\nok.png,gone1.png\ngone2.png,ok.png\n")
    with pytest.raises(DataError, match=r"2 path\(s\) .* are missing"):
        pairs_from_csv(tmp_path / "miss.csv")
