"""``python -m src.bench quality`` on tiny synthetic images with a tiny untrained checkpoint."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.bench import quality as bq
from src.bench.__main__ import main
from src.data.degradations import quantize_ycbcr
from src.utils.errors import DataError
from src.utils.threads import one_torch_thread
from tests.inference.fixtures import save_tiny_checkpoint

DEGRADATIONS = ("ycbcr_6_5", "rgb_jpeg", "h264", "stream_1080p")


def _run_quality(capsys: pytest.CaptureFixture[str], out: Path, *args: str) -> str:
    """Run ``python -m src.bench quality ARGS --out OUT`` on 1 thread; the report, checked to be printed too."""
    assert main(["quality", *args, "--out", str(out), "--threads", "1"]) == 0
    md = out.read_text()
    assert md in capsys.readouterr().out  # printed as well as written
    return md


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():  # tiny tensors: more threads only stall on a busy machine
        yield


def _gradients(folder: Path, n: int = 2, size: int = 64) -> list[np.ndarray]:
    """``n`` smooth colour gradients ``(size, size, 3)`` uint8, written as PNGs into ``folder``."""
    folder.mkdir()
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    out = []
    for i in range(n):
        img = np.stack([0.2 + 0.5 * x, 0.3 + 0.4 * y * (i + 1) / n, 0.6 - 0.3 * (x + y) / 2], axis=-1)
        u8 = np.round(img * 255).astype(np.uint8)
        Image.fromarray(u8).save(folder / f"grad_{i}.png")
        out.append(u8)
    return out


def _tables(md: str) -> dict[str, dict[str, list[str]]]:
    """``{degradation: {method: cells}}`` from the report's markdown tables."""
    tables: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in md.splitlines():
        if line.startswith("## "):
            current = line[3:].split(":", 1)[0]
            tables[current] = {}
        elif current and line.startswith("| ") and not line.startswith("| method"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tables[current][cells[0]] = cells[1:]
    return tables


def test_quality_benchmark_end_to_end(tmp_path, capsys):
    clean = _gradients(tmp_path / "imgs")
    # trained with 2 steps, recommending 1: the recipe row runs the schedule's 2, the default row 1
    ckpt = save_tiny_checkpoint(tmp_path / "tiny.ckpt", steps=2, extra_hparams={"deband_steps": 1})
    out = tmp_path / "report" / "quality.md"
    # stream_1080p on 96x64 frames: the same code as 1920x1080, only smaller
    md = _run_quality(
        capsys,
        out,
        *("--checkpoint", str(ckpt), "--recipe", str(ckpt), "--images", str(tmp_path / "imgs")),
        *("--size", "64", "--stream-size", "96x64", "--figure-crop", "48", "--speed", "extrapolate"),
    )
    tables = _tables(md)
    assert list(tables) == list(DEGRADATIONS)
    rows = [
        "input (banded)",
        "ffmpeg deband",
        "ffmpeg gradfun",
        "guided filter (r 4, eps 0.0001)",
        "recipe (2 steps)",
        "recipe (2 steps) (dithered)",
        "default model (1 step)",
        "default model (1 step) (dithered)",
        "default model, network only (1 step)",
        "default model, network only (1 step) (dithered)",
    ]
    for deg, table in tables.items():
        assert list(table) == rows, deg
        for method, cells in table.items():
            assert len(cells) == len(bq.COLUMNS) + 1
            numbers = cells if method != "input (banded)" else cells[:-1]
            assert all(math.isfinite(float(c)) for c in numbers), (deg, method, cells)
        assert table["input (banded)"][-1] == "–"  # nothing to time
        # one model run, two outputs: same speed
        assert table["recipe (2 steps)"][-1] == table["recipe (2 steps) (dithered)"][-1]
    # the input row's PSNR is the mean over images of the PSNR of the banded image (direct computation)
    psnrs = []
    for u8 in clean:
        c = torch.from_numpy(u8.transpose(2, 0, 1).astype(np.float32) / 255.0)
        mse = float(((quantize_ycbcr(c, 6, 5) - c) ** 2).mean())
        psnrs.append(10 * math.log10(1.0 / mse))
    assert float(tables["ycbcr_6_5"]["input (banded)"][0]) == pytest.approx(np.mean(psnrs), abs=0.006)
    assert "extrapolated" in md and "grad_0.png" in md
    assert "clean crops themselves" in md and "Cb CAMBI mlc5" in md and "96x64 frames themselves" in md
    # one crop panel per stream_1080p image, beside the report by default
    figures = sorted((out.parent / "bench_figures").glob("*.png"))
    assert [f.name for f in figures] == ["stream_1080p_00_grad_0.png", "stream_1080p_01_grad_1.png"]
    assert Image.open(figures[0]).size[0] > 300


def test_degradations_option_picks_and_rejects(tmp_path, capsys):
    _gradients(tmp_path / "imgs", n=1)
    out = tmp_path / "q.md"
    rc = main(
        [
            "quality",
            "--checkpoint",
            "none",
            "--images",
            str(tmp_path / "imgs"),
            "--size",
            "64",
            "--degradations",
            "h264",
            "--speed",
            "extrapolate",
            "--out",
            str(out),
            "--figures",
            str(tmp_path / "figs"),
        ]
    )
    assert rc == 0 and list(_tables(out.read_text())) == ["h264"]
    assert not (tmp_path / "figs").exists()  # only stream_1080p and the frames draw panels
    assert main(["quality", "--images", str(tmp_path / "imgs"), "--degradations", "h264,vhs"]) == 1
    assert "unknown vhs" in capsys.readouterr().err


def test_none_degradation_shows_what_methods_change_in_clean_images(tmp_path):
    _gradients(tmp_path / "imgs", n=1)
    out = tmp_path / "q.md"
    argv = ["quality", "--checkpoint", "none", "--images", str(tmp_path / "imgs"), "--size", "64"]
    assert main([*argv, "--degradations", "none", "--speed", "extrapolate", "--out", str(out)]) == 0
    table = _tables(out.read_text())["none"]
    assert float(table["input (banded)"][0]) == float("inf")  # the clean crop itself
    # ffmpeg's deband adds its own noise: finite PSNR against the untouched crop
    assert math.isfinite(float(table["ffmpeg deband"][0]))
    assert "none" not in bq.DEGRADATIONS  # not in a default run


def test_stream_degradation_on_a_small_frame():
    (deg,) = bq.make_degradations(stream_frame=(64, 96), names=["stream_1080p"])
    assert deg.frame == (64, 96) and deg.figure and "96x64" in deg.description
    y, x = torch.meshgrid(torch.linspace(0, 1, 120), torch.linspace(0, 1, 200), indexing="ij")
    photo = torch.stack([0.2 + 0.5 * x, 0.3 + 0.4 * y, 0.6 - 0.3 * (x + y) / 2])
    clean = bq.fit_frame(photo, *deg.frame)
    assert clean.shape == (3, 64, 96)
    banded = deg.apply(clean)
    assert banded.shape == clean.shape and banded.dtype == torch.float32
    assert torch.equal(banded * 255, (banded * 255).round())  # 8-bit valued
    assert 0 < float((banded - clean).abs().mean()) < 0.05


def test_model_rows_are_rounded_without_dither_then_dithered():
    class FakeDebander:
        default_steps = 1

        def deband_batch(self, x, steps=None):
            return (x + 0.3 / 255).clamp(0, 1)  # a float output between the 8-bit codes

    plain, dithered = bq._model_methods("m", FakeDebander())
    assert (plain.name, dithered.name) == ("m (1 step)", "m (1 step) (dithered)")
    assert plain.figure and not dithered.figure and dithered.speed_from == plain.name
    x = torch.linspace(0.2, 0.3, 64)[None, None, None, :].expand(1, 3, 32, 64).contiguous()
    x = torch.round(x * 255) / 255
    assert torch.equal(plain.run(x), x)  # rounded plainly: back on the input's codes
    d = dithered.run(x)
    assert torch.equal(d * 255, (d * 255).round()) and not torch.equal(d, x)  # 8-bit, but with the dither's noise


def _banded_frame(path: Path, offset: float, size: tuple[int, int] = (80, 120)) -> np.ndarray:
    """A 6-bit staircase frame written as an 8-bit PNG; returns the uint8 array."""
    h, w = size
    ramp = np.tile(np.linspace(0.3 + offset, 0.55 + offset, w)[None, :, None], (h, 1, 3))
    ramp[..., 2] *= 0.9
    u8 = np.round(np.round(ramp * 63) / 63 * 255).astype(np.uint8)
    Image.fromarray(u8).save(path)
    return u8


def test_find_frames_pairs_published_outputs(tmp_path):
    for name in ("banded-2.png", "banded-12.png", "published-indi-2.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    frames = bq.find_frames(tmp_path)
    assert [(f.name, f.published.name if f.published else None) for f in frames] == [
        ("banded-12.png", None),
        ("banded-2.png", "published-indi-2.png"),
    ]
    assert [f.name for f in bq.find_frames(tmp_path / "banded-1*.png")] == ["banded-12.png"]
    with pytest.raises(DataError):
        bq.find_frames(tmp_path / "missing")


def test_no_reference_frames(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no test photos here: the frames mode does not need them
    frames = tmp_path / "frames"
    frames.mkdir()
    banded = _banded_frame(frames / "banded-1.png", 0.0)
    _banded_frame(frames / "banded-2.png", 0.1)
    # the "published" restoration of frame 1: the staircase smoothed along x, rounded
    smooth = np.stack(
        [
            np.convolve(np.pad(row, 4, mode="edge"), np.ones(9) / 9, mode="valid")
            for row in banded.transpose(0, 2, 1).reshape(-1, banded.shape[1]).astype(float)
        ]
    )
    smooth = smooth.reshape(banded.shape[0], 3, -1).transpose(0, 2, 1)
    Image.fromarray(np.round(smooth).astype(np.uint8)).save(frames / "published-indi-1.png")
    ckpt = save_tiny_checkpoint(tmp_path / "tiny.ckpt", steps=1)
    out = tmp_path / "frames.md"
    md = _run_quality(capsys, out, "--frames", str(frames), "--checkpoint", str(ckpt), "--figure-crop", "64")
    per_frame = [line.strip("|").split("|") for line in md.splitlines() if line.startswith("| banded-")]
    rows = [(c[0].strip(), c[1].strip()) for c in per_frame]
    methods = [
        "input (banded)",
        "ffmpeg deband",
        "ffmpeg gradfun",
        "guided filter (r 4, eps 0.0001)",
        "default model (1 step)",
        "default model (1 step) (dithered)",
        "default model, network only (1 step)",
        "default model, network only (1 step) (dithered)",
    ]
    assert rows == [("banded-1.png", m) for m in [*methods, "published model"]] + [("banded-2.png", m) for m in methods]
    assert all(len(c) == len(bq.FRAME_COLUMNS) + 3 for c in per_frame)
    mean = md.split("## Mean over frames (2)")[1]
    mean_rows = {
        c[0].strip(): [v.strip() for v in c[1:]]
        for c in (line.strip("|").split("|") for line in mean.splitlines() if line.startswith("| "))
        if c[0].strip() != "method"
    }
    assert list(mean_rows) == [*methods, "published model"]
    assert mean_rows["published model"][-1] == "1" and mean_rows["input (banded)"][-1] == "2"  # frames counted
    cols = list(bq.FRAME_COLUMNS)
    inp, pub = mean_rows["input (banded)"], mean_rows["published model"]
    assert float(inp[cols.index("cambi_mlc5")]) > 5  # a 6-bit staircase: banded
    # its bands are flat (but for 1-code luma steps where only blue steps) and nothing is textured
    assert float(inp[cols.index("flat_noise")]) < 0.1 and inp[cols.index("texture_psnr")] == "n/a"
    assert float(pub[cols.index("cambi_mlc5")]) < float(inp[cols.index("cambi_mlc5")])
    assert inp[-2] == "–" and pub[-2] == "–"  # neither is run here: no seconds
    assert float(mean_rows["default model (1 step)"][-2]) > 0
    figures = sorted(p.name for p in (tmp_path / "bench_figures").glob("*.png"))
    assert figures == ["banded-1.png", "banded-2.png"]


def test_quality_skips_missing_weights_with_a_note(tmp_path, capsys):
    _gradients(tmp_path / "imgs", n=1)
    out = tmp_path / "q.md"
    rc = main(
        [
            "quality",
            "--checkpoint",
            str(tmp_path / "absent.ckpt"),
            "--images",
            str(tmp_path / "imgs"),
            "--size",
            "64",
            "--stream-size",
            "96x64",
            "--speed",
            "extrapolate",
            "--out",
            str(out),
            "--limit",
            "1",
        ]
    )
    assert rc == 0
    md = out.read_text()
    assert "default model: skipped (checkpoint not found" in md and "recipe: skipped" in md
    assert list(_tables(md)["h264"]) == [
        "input (banded)",
        "ffmpeg deband",
        "ffmpeg gradfun",
        "guided filter (r 4, eps 0.0001)",
    ]


def test_quality_without_test_photos_says_how_to_get_them(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["quality"]) == 1
    err = capsys.readouterr().err
    assert "python -m src.data.fetch" in err and "--images" in err and len(err.strip().splitlines()) == 1


def test_quality_rejects_odd_size(tmp_path, capsys):
    assert main(["quality", "--images", str(tmp_path), "--size", "63"]) == 1
    assert "--size must be an even number" in capsys.readouterr().err


def test_fit_square_resizes_the_short_side_then_crops_the_centre():
    img = torch.zeros(3, 100, 200)
    img[:, :, 100:] = 1.0  # right half white: the centre crop straddles the edge
    out = bq.fit_square(img, 50)
    assert out.shape == (3, 50, 50)
    assert float(out[:, :, :20].max()) < 0.05 and float(out[:, :, 30:].min()) > 0.95
    assert bq.fit_square(torch.rand(3, 64, 64), 64).shape == (3, 64, 64)


def test_time_frame_measures_a_frame(monkeypatch):
    seen = []
    method = bq.Method("identity", lambda x: seen.append(tuple(x.shape)) or x)
    monkeypatch.setattr(bq, "FRAME_1080P", (32, 48))  # the real 1080p frame is the same code, only bigger
    assert bq.time_frame(method) >= 0
    assert seen == [(1, 3, 64, 64), (1, 3, 32, 48)]  # warm-up, then the timed frame


def test_markdown_formats_missing_values():
    assert bq._fmt(None, 2) == "–" and bq._fmt(float("nan"), 2) == "n/a" and bq._fmt(1.234, 2) == "1.23"
    assert re.fullmatch(r"\d+\.\d{4}", bq._fmt(0.5, 4))


def test_dither_8bit_lands_on_8bit_codes_and_keeps_the_mean():
    x = torch.linspace(0.2, 0.3, 64)[None, None, None, :].expand(2, 3, 64, 64).contiguous()
    q = bq.dither_8bit(x)
    assert q.shape == x.shape and q.dtype == torch.float32
    codes = q * 255
    assert torch.equal(codes, codes.round())
    # dithering keeps the local average: column means follow the ramp within a fraction of a code
    assert float((q.mean(dim=(0, 1, 2)) - x[0, 0, 0]).abs().max()) < 0.5 / 255


def test_grain_free_note_shows_what_cambi_reads_on_a_restoration_without_grain() -> None:
    """A gentle ramp with grain scores low CAMBI; the same ramp with its grain smoothed away, very close to it
    in PSNR, is an 8-bit staircase and scores high: the note reports both the fidelity and that score."""
    from src.bench.quality import _clean_cambi, _grain_free_note

    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0.30, 0.36, 384).expand(3, 256, 384)
    clean = (ramp + torch.randn(1, 256, 384, generator=g) * 1.5 / 255).clamp(0, 1)
    images = [("ramp", clean)]
    grainy = float(_clean_cambi(images).split(", ")[1].split()[-1])  # "CAMBI mlc5 x"
    note = _grain_free_note(images)
    assert note.startswith("smoothed by a Gaussian of sigma 2 px")
    psnr = float(note.split("smooth-region PSNR ")[1].split(" dB")[0])
    smoothed = float(note.split("): ")[1].split(", ")[1].split()[-1])
    assert psnr > 43  # the grain (1.5 codes std: 44.6 dB) is all it takes away
    assert grainy < 1.0 and smoothed > grainy + 3.0


def test_stream_codec_variants_are_optional_and_band_like_stream_1080p(tmp_path):
    """The opt-in stream_* degradations work on whole frames with their own codec (or chroma depth), and a run
    that names one scores it on the frames."""
    names = [f"stream_{v[0]}" for v in bq.STREAM_VARIANTS]
    assert not set(names) & set(bq.DEGRADATIONS) and set(names) <= set(bq.OPTIONAL_DEGRADATIONS)
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 96), indexing="ij")
    clean = torch.stack([0.2 + 0.5 * x, 0.3 + 0.4 * y, 0.6 - 0.3 * (x + y) / 2])
    outs = {}
    for deg in bq.make_degradations(stream_frame=(64, 96), names=names):
        assert deg.frame == (64, 96) and not deg.figure
        outs[deg.name] = deg.apply(clean)
        banded = outs[deg.name]
        assert banded.shape == clean.shape
        codes = banded * 255
        assert torch.allclose(codes, codes.round(), atol=1e-3)  # an 8-bit decoded frame
        assert 0.001 < float((banded - clean).abs().mean()) < 0.05  # banded, not destroyed
    assert len({round(float(o.sum()), 3) for o in outs.values()}) == len(outs)  # each its own codec
    # stream_chroma4's chroma steps are twice the 5-bit stream set's (same codec and luma): larger chroma errors
    from src.colour.yuv import rgb_to_ycbcr709

    five = bq.make_degradations(stream_frame=(64, 96), names=("stream_1080p",))[0].apply(clean)
    ref = rgb_to_ycbcr709(clean)[1:]
    err5, err4 = (float((rgb_to_ycbcr709(v)[1:] - ref).abs().mean()) for v in (five, outs["stream_chroma4"]))
    assert err4 > 1.5 * err5
    _gradients(tmp_path / "imgs", n=1)
    out = tmp_path / "q.md"
    argv = ["quality", "--checkpoint", "none", "--images", str(tmp_path / "imgs"), "--stream-size", "96x64"]
    assert main([*argv, "--degradations", "stream_vp9", "--speed", "extrapolate", "--out", str(out)]) == 0
    table = _tables(out.read_text())["stream_vp9"]
    assert math.isfinite(float(table["input (banded)"][0]))
