import pickle
from pathlib import Path

import pytest
import torch
from hydra.errors import InstantiationException
from PIL import Image

from src.utils.checkpoint_io import AtomicCheckpointIO
from src.utils.errors import ConfigError, DataError
from src.utils.hydra_utils import find_user_error, one_line_errors
from src.utils.images import make_grid, save_png


def test_atomic_checkpoint_io_replaces_and_leaves_no_temp(tmp_path: Path):
    io = AtomicCheckpointIO()
    path = tmp_path / "ck" / "last.ckpt"
    io.save_checkpoint({"a": torch.ones(3)}, path)
    io.save_checkpoint({"a": torch.zeros(3)}, path)
    assert torch.equal(torch.load(path)["a"], torch.zeros(3))
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


def test_atomic_checkpoint_io_keeps_old_file_when_saving_fails(tmp_path: Path):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"a": torch.ones(3)}, path)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        io.save_checkpoint({"a": lambda: None}, path)  # lambdas do not pickle
    assert torch.equal(torch.load(path)["a"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_user_errors_are_found_through_hydra_wrapping(capsys):
    try:
        try:
            raise ConfigError("indi.steps must be an integer >= 1, got 0")
        except ConfigError as e:
            raise InstantiationException("Error in call to target") from e
    except InstantiationException as wrapped:
        assert isinstance(find_user_error(wrapped), ConfigError)
    assert find_user_error(RuntimeError("x")) is None

    @one_line_errors
    def fails():
        raise DataError("no images found under 'x'")

    with pytest.raises(SystemExit) as exc:
        fails()
    assert exc.value.code == 1
    assert capsys.readouterr().err.strip() == "error: no images found under 'x'"

    @one_line_errors
    def bug():
        raise KeyError("a real bug keeps its traceback")

    with pytest.raises(KeyError):
        bug()


def test_grid_and_png(tmp_path: Path):
    rows = torch.rand(2, 3, 3, 8, 10)
    grid = make_grid(rows, pad=2)
    assert grid.shape == (3, 2 * 10 - 2, 3 * 12 - 2)
    assert torch.equal(grid[:, :8, :10], rows[0, 0])
    out = save_png(grid, tmp_path / "sub" / "g.png")
    assert Image.open(out).size == (34, 18)
