"""``python -m src.bench bound`` on tiny synthetic gradients with a tiny untrained checkpoint."""

from __future__ import annotations

import pytest

from src.bench.__main__ import main
from src.utils.threads import one_torch_thread
from tests.bench.test_quality import _gradients, _tables
from tests.inference.fixtures import save_tiny_checkpoint


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def test_bound_end_to_end(tmp_path, capsys):
    _gradients(tmp_path / "imgs", size=96)
    ckpt = save_tiny_checkpoint(tmp_path / "tiny.ckpt", steps=1)
    out = tmp_path / "report" / "bound.md"
    rc = main(
        [
            "bound",
            "--checkpoint",
            str(ckpt),
            "--images",
            str(tmp_path / "imgs"),
            "--size",
            "96",
            "--iters",
            "20,100",
            "--threads",
            "1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    md = out.read_text()
    assert md.strip() in capsys.readouterr().out  # the report printed is the report written
    tables = _tables(md)
    assert set(tables) == {"ycbcr_6_5", "rgb_5"}
    for name, rows in tables.items():
        assert rows["input (banded)"][-1] == "+0.00"
        smooth = {k: float(v[1]) for k, v in rows.items()}
        # on smooth gradients, knowing the grid must beat the banded input, more with more iterations
        assert smooth["consistent smoothing, 100 iterations (knows the grid)"] > smooth["input (banded)"] + 3, name
        assert (
            smooth["consistent smoothing, 100 iterations (knows the grid)"]
            > smooth["consistent smoothing, 20 iterations (knows the grid)"]
        ), name
        assert "default model (blind)" in rows
        assert "default model, then consistent smoothing, 0 iterations" in rows
        gain = float(rows["default model, then consistent smoothing, 100 iterations"][-1])
        assert gain == pytest.approx(
            smooth["default model, then consistent smoothing, 100 iterations"] - smooth["input (banded)"], abs=0.011
        )


def test_bound_rejects_bad_iters_and_missing_photos(tmp_path, capsys):
    assert main(["bound", "--iters", "10,x", "--images", str(tmp_path)]) == 1
    assert "--iters" in capsys.readouterr().err
    assert main(["bound", "--images", str(tmp_path / "nope"), "--checkpoint", "none"]) == 1
    assert "src.data.fetch" in capsys.readouterr().err
