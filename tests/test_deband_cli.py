"""The ``deband`` command line: images, folders, videos, bit depths, refusals and errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from src.data.image_io import read_image
from src.deband import main
from src.inference.video import frames_per_batch
from tests.inference.fixtures import identity_ckpt, make_clip, tiny_ckpt  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny images: one thread avoids multi-thread stalls on a busy machine (see tests/inference/conftest.py)."""
    from src.utils.threads import one_torch_thread

    with one_torch_thread():
        yield


@pytest.fixture
def run(tiny_ckpt, capsys):  # noqa: F811
    """Call ``main`` in-process with the tiny checkpoint; returns (exit code, stderr)."""

    def call(*argv: str | Path) -> tuple[int, str]:
        code = main([*map(str, argv), "--checkpoint", str(tiny_ckpt), "--quiet"])
        return code, capsys.readouterr().err

    return call


def _ramp_rgb(h: int = 32, w: int = 96) -> np.ndarray:
    r = np.linspace(0, 1, w)[None, :]
    return np.stack([np.repeat(r, h, 0), np.repeat(r[:, ::-1], h, 0), np.full((h, w), 0.5)], axis=2)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


# ------------------------------------------------------------------------------------------------ images
def test_jpeg_to_png(run, tmp_path: Path) -> None:
    src = tmp_path / "photo.jpg"
    Image.fromarray((_ramp_rgb() * 255).astype(np.uint8)).save(src, quality=90)
    code, err = run(src, "-o", tmp_path / "out.png")
    assert code == 0, err
    assert "using weights:" in err and "tiny.ckpt" in err
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == "RGB" and im.size == (96, 32)
    assert _files(tmp_path) == ["out.png", "photo.jpg"]


def test_folder_mirrors_structure(run, tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    img = Image.fromarray((_ramp_rgb(8, 16) * 255).astype(np.uint8))
    img.save(src / "a.png")
    img.save(src / "sub" / "b.jpg")
    img.save(src / "sub" / "deeper" / "c.webp")
    (src / "notes.txt").write_text("not an image")
    code, err = run(src, "-o", tmp_path / "out")
    assert code == 0, err
    assert _files(tmp_path / "out") == ["a.png", "sub/b.jpg", "sub/deeper/c.webp"]
    # --bit-depth 16: JPEG/WebP cannot hold it, so those become PNG
    code, err = run(src, "-o", tmp_path / "out16", "--bit-depth", "16")
    assert code == 0, err
    assert _files(tmp_path / "out16") == ["a.png", "sub/b.png", "sub/deeper/c.png"]
    assert read_image(tmp_path / "out16" / "sub" / "b.png")[1] == 16


def test_16bit_png_stays_16bit(run, tmp_path: Path) -> None:
    from src.data.image_io import write_image

    src = write_image(tmp_path / "deep.png", _ramp_rgb(16, 300), bit_depth=16)
    code, err = run(src, "-o", tmp_path / "out.png")
    assert code == 0, err
    arr, depth = read_image(tmp_path / "out.png")
    assert depth == 16
    codes = np.round(arr * 65535).astype(np.int64)
    assert len(np.unique(codes[:, :, 0])) > 256  # finer than 8 bits


def test_rgba_alpha_and_gray(run, tmp_path: Path) -> None:
    rgba = np.concatenate(
        [(_ramp_rgb() * 255).astype(np.uint8), np.random.default_rng(0).integers(0, 256, (32, 96, 1), dtype=np.uint8)],
        axis=2,
    )
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    Image.fromarray((_ramp_rgb()[:, :, 0] * 255).astype(np.uint8)).save(tmp_path / "g.png")
    code, err = run(tmp_path / "a.png", tmp_path / "g.png", "-o", tmp_path / "out")
    assert code == 0, err
    with Image.open(tmp_path / "out" / "a.png") as im:
        assert im.mode == "RGBA" and np.array_equal(np.asarray(im)[:, :, 3], rgba[:, :, 3])
    with Image.open(tmp_path / "out" / "g.png") as im:
        assert im.mode == "L"


@pytest.mark.parametrize("size", [(1, 1), (7, 1001)])
def test_odd_sizes(run, tmp_path: Path, size: tuple[int, int]) -> None:
    Image.fromarray(np.full((*size, 3), 128, np.uint8)).save(tmp_path / "odd.png")
    code, err = run(tmp_path / "odd.png", "-o", tmp_path / "out.png")
    assert code == 0, err
    with Image.open(tmp_path / "out.png") as im:
        assert im.size == (size[1], size[0])


def test_dithered_8bit_output_has_no_long_runs(identity_ckpt, tmp_path: Path, capsys) -> None:  # noqa: F811
    from src.data.image_io import write_image

    # an identity net, so only the output quantisation differs; ~5 codes over 1024 px
    ramp = np.tile(np.linspace(0.40, 0.42, 1024)[None, :, None], (32, 1, 3))
    src = write_image(tmp_path / "ramp.png", ramp, bit_depth=16)
    common = ["--checkpoint", str(identity_ckpt), "--bit-depth", "8", "-q"]
    assert main([str(src), "-o", str(tmp_path / "dith.png"), *common]) == 0
    assert main([str(src), "-o", str(tmp_path / "plain.png"), *common, "--no-dither"]) == 0

    def longest_run(path: Path) -> int:
        with Image.open(path) as im:
            assert im.mode == "RGB"  # 8-bit
            row = np.asarray(im)[16, :, 1].astype(np.int64)
        edges = np.flatnonzero(np.diff(row)) + 1
        return int(np.diff(np.concatenate([[0], edges, [len(row)]])).max())

    assert longest_run(tmp_path / "plain.png") > 150
    assert longest_run(tmp_path / "dith.png") < 100


def test_no_contour_flag(identity_ckpt, tmp_path: Path, capsys) -> None:  # noqa: F811
    from src.data.image_io import write_image

    # wide plateaus 5 codes apart through an identity net: only the contour pass changes them
    ramp = np.round(np.linspace(90, 120, 1200) / 5) * 5 / 255
    src = write_image(tmp_path / "bands.png", np.tile(ramp[None, :, None], (24, 1, 3)), bit_depth=8)
    common = ["--checkpoint", str(identity_ckpt), "--bit-depth", "16", "-q"]
    assert main([str(src), "-o", str(tmp_path / "on.png"), *common]) == 0
    assert main([str(src), "-o", str(tmp_path / "off.png"), *common, "--no-contour"]) == 0

    from src.data.image_io import read_image

    off = read_image(tmp_path / "off.png")[0][12, :, 1].astype(np.float64) * 255
    on = read_image(tmp_path / "on.png")[0][12, :, 1].astype(np.float64) * 255
    clean = np.linspace(90, 120, 1200)
    assert np.abs(off - ramp * 255).max() < 0.01  # the input, untouched
    assert np.abs(on - clean)[200:1000].mean() < 0.3 * np.abs(off - clean)[200:1000].mean()


def test_contour_gate_flag(identity_ckpt, tmp_path: Path, capsys) -> None:  # noqa: F811
    from src.baselines.contour_gate import DEFAULT_GATE
    from src.data.image_io import read_image, write_image

    ramp = np.round(np.linspace(90, 120, 1200) / 5) * 5 / 255
    src = write_image(tmp_path / "bands.png", np.tile(ramp[None, :, None], (24, 1, 3)), bit_depth=8)
    common = ["--checkpoint", str(identity_ckpt), "--bit-depth", "16"]
    # the hand rules and a gate file given by path (the shipped one) both rebuild the ramp, and say so
    for i, (gate, name) in enumerate((("rules", "(hand rules)"), (str(DEFAULT_GATE), f"(gate {DEFAULT_GATE})"))):
        out = tmp_path / f"out{i}.png"
        assert main([str(src), "-o", str(out), *common, "--contour-gate", gate]) == 0
        assert f"then contour interpolation {name}" in capsys.readouterr().err
        on = read_image(out)[0][12, :, 1].astype(np.float64) * 255
        clean = np.linspace(90, 120, 1200)
        assert np.abs(on - clean)[200:1000].mean() < 0.3 * np.abs(ramp * 255 - clean)[200:1000].mean()
    # refused before any work: a missing file, a truncated one, or a gate without the pass
    assert main([str(src), "-o", str(tmp_path / "x.png"), *common, "--contour-gate", "nope.pt"]) == 2
    assert "--contour-gate: no such file 'nope.pt'" in capsys.readouterr().err
    bad = tmp_path / "bad_gate.pt"
    bad.write_bytes(DEFAULT_GATE.read_bytes()[:1000])
    assert main([str(src), "-o", str(tmp_path / "x.png"), *common, "--contour-gate", str(bad)]) == 2
    assert "cannot load contour gate weights" in capsys.readouterr().err
    assert main([str(src), "-o", str(tmp_path / "x.png"), *common, "--no-contour", "--contour-gate", "rules"]) == 2
    assert "no effect with --no-contour" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------------------------------------ refusals
def test_existing_output_and_input_refused(run, tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src)
    out = tmp_path / "b.png"
    out.write_bytes(b"keep me")
    code, err = run(src, "-o", out)
    assert code == 1 and "--overwrite" in err and out.read_bytes() == b"keep me"
    code, err = run(src, "-o", out, "--overwrite")
    assert code == 0 and out.read_bytes() != b"keep me"
    before = src.read_bytes()
    code, err = run(src, "-o", src, "--overwrite")
    assert code == 1 and "input" in err and src.read_bytes() == before


def test_first_image_is_read_while_torch_loads(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first image is decoded on a background thread during start-up, once; the others as they come."""
    import threading

    import src.inference.image_files as image_files

    readers: list[tuple[str, str]] = []
    real = image_files.read_image_file

    def spy(path: Path):  # noqa: ANN202
        readers.append((Path(path).name, threading.current_thread().name))
        return real(path)

    monkeypatch.setattr(image_files, "read_image_file", spy)
    for name in ("a.png", "b.png"):
        Image.fromarray((_ramp_rgb() * 255).astype(np.uint8)).save(tmp_path / name)
    code, err = run(tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "out")
    assert code == 0, err
    assert readers == [("a.png", "early-read"), ("b.png", "MainThread")]
    assert _files(tmp_path / "out") == ["a.png", "b.png"]


@pytest.mark.parametrize("case", ["corrupt", "text_png", "unsupported", "missing", "truncated_video", "truncated_mkv"])
def test_bad_inputs_one_line_no_partial_files(run, tmp_path: Path, case: str) -> None:
    out_dir = tmp_path / "out"
    if case == "corrupt":
        src = tmp_path / "bad.jpg"
        data = (Image.fromarray(np.zeros((64, 64, 3), np.uint8)), src)
        data[0].save(src)
        src.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 3])
        dst = out_dir / "bad.png"
    elif case == "text_png":
        src = tmp_path / "notes.png"
        src.write_text("hello, I am text")
        dst = out_dir / "notes.png"
    elif case == "unsupported":
        src = tmp_path / "doc.pdf"
        src.write_bytes(b"%PDF-1.4")
        dst = out_dir / "doc.png"
    elif case == "missing":
        src = tmp_path / "nope.png"
        dst = out_dir / "nope.png"
    else:  # Matroska states no frame count, only the length in its header
        ext = ".mkv" if case == "truncated_mkv" else ".mp4"
        full = make_clip(tmp_path / f"full{ext}", n=24, audio=ext == ".mkv", subtitles=False)
        src = tmp_path / f"cut{ext}"
        src.write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 3])
        dst = out_dir / f"cut{ext}"
    code, err = run(src, "-o", dst)
    assert code == 1
    errors = _error_lines(err)
    assert len(errors) == 1, err
    assert "Traceback" not in err
    assert not out_dir.exists() or _files(out_dir) == []
    if case == "missing":  # the reason is the missing input, not the output's name
        assert "input not found" in errors[0] and "looks like a file name" not in err
    if case == "unsupported":  # says what would have been read
        assert "'.pdf'" in errors[0] and ".png" in errors[0] and ".mp4" in errors[0]
    if case == "truncated_mkv":  # decodes cleanly up to the cut: only the header's length tells
        assert "truncated or corrupt" in errors[0]


def test_read_only_output_folder(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: make the folder look read-only to the permission check
        import src.utils.atomic as atomic

        real_access = os.access
        monkeypatch.setattr(atomic.os, "access", lambda p, mode: False if Path(p) == ro else real_access(p, mode))
    try:
        code, err = run(src, "-o", ro / "a.png")
        assert code == 1 and len(_error_lines(err)) == 1 and "permission denied" in err
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_folder_run_goes_on_after_a_failure(run, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src / "good.png")
    (src / "bad.png").write_text("not a png")
    code, err = run(src, "-o", tmp_path / "out")
    assert code == 1
    assert _files(tmp_path / "out") == ["good.png"]
    assert len(_error_lines(err)) == 1 and "bad.png" in err


def test_missing_output_folder_is_created(run, tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src)
    code, err = run(src, "-o", tmp_path / "new" / "deeper" / "a.png")
    assert code == 0, err and (tmp_path / "new" / "deeper" / "a.png").is_file()


# ------------------------------------------------------------------------------------------------ video
def _packets(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux() if p.stream.type == kind and p.size]


def _frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [round(float(f.time), 4) for f in c.decode(video=0)]


def test_video_keeps_audio_subtitles_frames_and_duration(run, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "clip.mp4")
    dst = tmp_path / "clip_debanded.mp4"
    code, err = run(src, "-o", dst, "--steps", "1")
    assert code == 0, err
    assert _packets(dst, "audio") == _packets(src, "audio")  # remuxed, not re-encoded
    assert [p for p in _packets(dst, "subtitle") if len(p) > 2] == [p for p in _packets(src, "subtitle") if len(p) > 2]
    assert _frame_times(dst) == _frame_times(src)  # count, rate and timestamps
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        assert abs(a.duration - b.duration) < 50_000  # microseconds
        assert b.metadata.get("title") == "test clip"
        assert b.streams.video[0].codec_context.name == "h264"
        assert b.streams.video[0].codec_context.format.name == "yuv420p"
    assert _files(tmp_path) == ["clip.mp4", "clip_debanded.mp4"]


def test_video_part_and_10bit_hevc_mkv(run, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "clip.mkv")
    dst = tmp_path / "part.mkv"
    code, err = run(
        src,
        "-o",
        dst,
        "--steps",
        "1",
        "--start",
        "0.25",
        "--duration",
        "0.5",
        "--codec",
        "libx265",
        "--video-bit-depth",
        "10",
    )
    assert code == 0, err
    times = _frame_times(dst)
    assert len(times) == 6 and times[0] == 0.0  # 0.5 s at 12 fps, shifted to start at 0
    with av.open(str(dst)) as c:
        v = c.streams.video[0].codec_context
        assert (v.name, v.format.name) == ("hevc", "yuv420p10le")
        assert c.streams.audio and c.duration < 700_000


def test_video_batches_by_pixels_on_a_cpu_and_gives_the_same_frames(run, tmp_path: Path) -> None:
    cpu = torch.device("cpu")
    assert frames_per_batch(1920, 1080, cpu) == 1 and frames_per_batch(1280, 720, cpu) == 2
    assert frames_per_batch(3840, 2160, cpu) == 1 and frames_per_batch(64, 48, cpu) > 4
    assert frames_per_batch(1920, 1080, torch.device("meta")) == 4  # accelerators: a fixed batch
    src = make_clip(tmp_path / "clip.mp4", n=6, audio=False, subtitles=False)
    outs = []
    for batch in (None, "1", "4"):
        dst = tmp_path / f"out_{batch}.mp4"
        # the network alone: the contour pass's thresholds would turn float-rounding differences of the
        # network's output between batch sizes into visible ones on this tiny random net; lossless x264
        # (CRF 0): its lossy decisions on frames this small can differ from run to run
        code, err = run(
            src, "-o", dst, "--steps", "1", "--no-contour", "--crf", "0", *(["--batch", batch] if batch else [])
        )
        assert code == 0, err
        with av.open(str(dst)) as c:
            outs.append([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert len(outs[0]) == 6
    for other in outs[1:]:  # batching changes the speed, not the frames
        assert all(np.array_equal(a, b) for a, b in zip(outs[0], other))


def test_10bit_video_is_not_dithered(identity_ckpt, tmp_path: Path, capsys) -> None:  # noqa: F811
    import fractions

    # flat grey frames through an identity network: 8-bit output carries the dither, 10-bit none
    src = tmp_path / "flat.mp4"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=12, options={"crf": "0"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 100, np.uint8), format="rgb24")
            f.pts, f.time_base = i, fractions.Fraction(1, 12)
            out.mux(v.encode(f))
        out.mux(v.encode(None))
    common = ["--checkpoint", str(identity_ckpt), "--no-contour", "--crf", "0", "-q"]

    def luma_std(path: Path, fmt: str) -> float:
        with av.open(str(path)) as c:
            frame = next(c.decode(video=0)).reformat(format=fmt)
            arr = frame.to_ndarray()  # yuv420p: (H * 3/2, W); the first H rows are Y
            return float(np.std(arr[8:40, 8:56]))

    assert main([str(src), "-o", str(tmp_path / "o8.mp4"), *common]) == 0
    assert main([str(src), "-o", str(tmp_path / "o10.mp4"), *common, "--video-bit-depth", "10"]) == 0
    assert luma_std(tmp_path / "o8.mp4", "yuv420p") > 0.1
    assert luma_std(tmp_path / "o10.mp4", "yuv420p10le") == 0.0


@pytest.mark.parametrize(
    "flag,value,message",
    [
        ("--batch", "0", "--batch must be >= 1, got 0"),
        ("--video-hold", "-1", "--video-hold must be in 0..4 codes, got -1.0"),
        ("--start", "nan", "--start must be a finite number of seconds >= 0, got nan"),
        ("--start", "inf", "--start must be a finite number of seconds >= 0, got inf"),
        ("--duration", "nan", "--duration must be > 0, got nan"),
        ("--tile", "8", "--tile must be 0 (off) or >= 64 pixels, got 8"),
    ],
)
def test_bad_video_option_is_a_usage_error(run, tmp_path: Path, flag: str, value: str, message: str) -> None:
    src = make_clip(tmp_path / "clip.mp4", n=2, audio=False, subtitles=False)
    code, err = run(src, "-o", tmp_path / "out.mp4", flag, value)
    assert code == 2 and _error_lines(err) == [f"error: {message}"]
    assert not (tmp_path / "out.mp4").exists()


def test_video_keeps_display_rotation(run, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "phone.mp4", n=3, audio=False, subtitles=False, rotation=90)
    dst = tmp_path / "out.mp4"
    assert run(src, "-o", dst, "--steps", "1")[0] == 0
    with av.open(str(dst)) as c:
        assert next(c.decode(video=0)).rotation == 90


# ------------------------------------------------------------------------------------------------ entry points
def test_console_script_and_module(tiny_ckpt, tmp_path: Path) -> None:  # noqa: F811
    src = tmp_path / "a.png"
    Image.fromarray((_ramp_rgb(8, 8) * 255).astype(np.uint8)).save(src)
    script = shutil.which("deband", path=str(Path(sys.executable).parent)) or shutil.which("deband")
    cmd = [script] if script else [sys.executable, "-m", "src.deband"]
    proc = subprocess.run(
        [*cmd, str(src), "-o", str(tmp_path / "b.png"), "--checkpoint", str(tiny_ckpt), "--threads", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "using weights:" in proc.stderr and (tmp_path / "b.png").is_file()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.deband",
            str(src),
            "-o",
            str(tmp_path / "c.png"),
            "--checkpoint",
            str(tmp_path / "missing.ckpt"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 1 and proc.stderr.strip().startswith("error: checkpoint not found")
    assert "Traceback" not in proc.stderr and not (tmp_path / "c.png").exists()


def test_help_explains_bit_depth(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "blue-noise" in out and "16-bit" in out and "--video-bit-depth" in out


def test_version_prints_the_installed_package_version(capsys) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as e:
        main(["--version"])  # no input or -o needed
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"deband (indi-deband) {version('indi-deband')}"


def test_arguments_and_jobs_are_planned_before_torch_is_imported(tmp_path: Path) -> None:
    """deband starts its CPU-use sample and maps memory in while torch loads, so parsing and planning must
    not import it."""
    src = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(src)
    code = (
        "import sys, src.deband as d; a = d.build_parser().parse_args([sys.argv[1], '-o', sys.argv[2]]); "
        "jobs, errors = d.plan_jobs(a.inputs, a.output, a.bit_depth); "
        "assert len(jobs) == 1 and not errors and d._first_image_bytes(jobs) == 64 * 340; "
        "assert 'torch' not in sys.modules and 'av' not in sys.modules, 'imported too early'"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(src), str(tmp_path / "o.png")],
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )


def test_multi_frame_image_warns_that_only_the_first_is_debanded(run, tmp_path: Path) -> None:
    frames = [Image.fromarray((np.roll(_ramp_rgb(), 8 * i, 1) * 255).round().astype(np.uint8)) for i in range(3)]
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])
    code, err = run(tmp_path / "anim.png", "-o", tmp_path / "out.png", "--steps", "1")
    assert code == 0 and (tmp_path / "out.png").exists()
    assert f"warning: {tmp_path / 'anim.png'} holds 3 frames or pages; only the first was debanded" in err


def test_terminated_run_leaves_no_partial_output(tmp_path: Path) -> None:
    """SIGTERM (kill, a service manager stopping a job) cleans up as Ctrl-C does: exit 130, no files left."""
    import signal
    import time

    src = make_clip(tmp_path / "long.mp4", n=400, w=128, h=96, audio=False, subtitles=False)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "WANDB_MODE": "offline"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "src.deband", str(src), "-o", str(out / "o.mp4"), "--threads", "1", "-q"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    while not list(out.iterdir()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the temporary output exists once encoding has started
    assert proc.poll() is None, "the run ended before it could be terminated"
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130
    assert "interrupted" in err
    assert list(out.iterdir()) == []


def test_a_missing_input_does_not_stop_the_others(run, tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    Image.fromarray((_ramp_rgb() * 255).round().astype(np.uint8)).save(good)
    code, err = run(tmp_path / "nope.png", good, "-o", tmp_path / "out", "--steps", "1")
    assert code == 1 and f"error: input not found: '{tmp_path / 'nope.png'}'" in err
    assert (tmp_path / "out" / "good.png").exists()


@pytest.mark.parametrize("case", ["wrong-extension", "file-for-many", "same-folder", "empty-output", "bad-device"])
def test_a_command_that_cannot_be_right_is_a_usage_error(run, tmp_path: Path, case: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    img = folder / "a.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(img)
    argv, message = {
        "wrong-extension": ([img, "-o", tmp_path / "a.xyz"], "needs an output file name ending in"),
        "file-for-many": ([img, img, "-o", tmp_path / "b.png"], "looks like a file name"),
        "same-folder": ([folder, "-o", folder], "the output folder is the input folder"),
        "empty-output": ([img, "-o", ""], None),  # argparse's own message
        "bad-device": ([img, "-o", tmp_path / "b.png", "--device", "foo"], "unknown --device 'foo'"),
    }[case]
    if message is None:
        with pytest.raises(SystemExit) as e:
            main([str(a) for a in argv])
        assert e.value.code == 2
    else:
        code, err = run(*argv)
        errors = _error_lines(err)
        assert code == 2 and len(errors) == 1 and message in errors[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "in"]  # nothing written, input kept


def test_an_input_that_is_neither_file_nor_folder_is_named(run, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(good)
    code, err = run(fifo, good, "-o", tmp_path / "out", "--steps", "1")
    assert code == 1 and f"error: cannot read '{fifo}': not a regular file or a folder" in err
    assert (tmp_path / "out" / "good.png").exists()
