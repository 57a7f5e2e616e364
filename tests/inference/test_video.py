"""Unusual and bad video input through ``deband_video``: no video stream, variable frame rate, 10-bit input,
chapters, an interrupted run."""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np
import pytest

from src.inference.debander import Debander
from src.inference.video import VideoOptions, deband_video
from src.utils.errors import DataError
from tests.inference.fixtures import identity_ckpt  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def debander(identity_ckpt) -> Debander:  # noqa: F811
    return Debander.from_checkpoint(identity_ckpt, device="cpu", contour=False)


def _write(path: Path, pts: list[int], fmt: str = "yuv420p", codec: str = "libx264", chapters: bool = False) -> Path:
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=12)
        v.width, v.height, v.pix_fmt = 64, 48, fmt
        v.time_base = fractions.Fraction(1, 12)
        if codec == "libx265":
            v.options = {"x265-params": "log-level=none"}
        if chapters:
            out.set_chapters(
                [
                    {"id": 1, "start": 0, "end": 6, "time_base": fractions.Fraction(1, 12), "metadata": {"title": "a"}},
                    {
                        "id": 2,
                        "start": 6,
                        "end": 12,
                        "time_base": fractions.Fraction(1, 12),
                        "metadata": {"title": "b"},
                    },
                ]
            )
        for p in pts:
            img = np.full((48, 64, 3), 40 + 10 * (p % 8), np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=fmt)
            f.pts, f.time_base = p, fractions.Fraction(1, 12)
            out.mux(v.encode(f))
        out.mux(v.encode(None))
    return path


def _pts_seconds(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [round(float(f.pts * f.time_base), 3) for f in c.decode(video=0)]


def test_no_video_stream_is_a_clear_error(debander, tmp_path):
    src = tmp_path / "audio.m4a"
    with av.open(str(src), "w") as out:
        a = out.add_stream("aac", rate=48000)
        a.layout = "mono"
        samples = np.zeros((1, 48000), np.float32)
        for k in range(0, samples.shape[1], 1024):
            f = av.AudioFrame.from_ndarray(samples[:, k : k + 1024], format="fltp", layout="mono")
            f.sample_rate = 48000
            for p in a.encode(f):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    with pytest.raises(DataError, match="no video stream"):
        deband_video(debander, src, tmp_path / "out.mp4", VideoOptions(quiet=True))
    assert not (tmp_path / "out.mp4").exists()


def test_variable_frame_rate_keeps_every_timestamp(debander, tmp_path):
    pts = [0, 1, 3, 6, 7, 11]  # irregular gaps: a variable frame rate
    src = _write(tmp_path / "vfr.mp4", pts)
    dst = tmp_path / "out.mp4"
    assert deband_video(debander, src, dst, VideoOptions(quiet=True)) == len(pts)
    assert _pts_seconds(dst) == _pts_seconds(src)


def test_10bit_input_stays_10bit(debander, tmp_path):
    src = _write(tmp_path / "ten.mkv", list(range(4)), fmt="yuv420p10le", codec="libx265")
    dst = tmp_path / "out.mkv"
    deband_video(debander, src, dst, VideoOptions(quiet=True, codec="libx265"))
    with av.open(str(dst)) as c:
        assert c.streams.video[0].codec_context.format.name == "yuv420p10le"


def test_chapters_are_copied(debander, tmp_path):
    src = _write(tmp_path / "chapters.mkv", list(range(12)), chapters=True)
    with av.open(str(src)) as c:
        if len(c.chapters()) != 2:
            pytest.skip("this PyAV/FFmpeg build does not write chapters")
    dst = tmp_path / "out.mkv"
    deband_video(debander, src, dst, VideoOptions(quiet=True))
    with av.open(str(dst)) as c:
        assert [ch["metadata"].get("title") for ch in c.chapters()] == ["a", "b"]


def _failing_on_call(fn, n: int, exc: BaseException | type[BaseException]):  # noqa: ANN001, ANN202
    """``fn``, except that its ``n``-th call raises ``exc``."""
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise exc
        return fn(*args, **kwargs)

    return wrapped


def test_interrupted_run_leaves_nothing_under_the_final_name(debander, tmp_path, monkeypatch):
    src = _write(tmp_path / "clip.mp4", list(range(6)))
    dst = tmp_path / "out.mp4"
    monkeypatch.setattr(debander, "deband_batch", _failing_on_call(debander.deband_batch, 2, KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        deband_video(debander, src, dst, VideoOptions(quiet=True, batch=1))
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no temporary file left behind


def test_error_while_encoding_surfaces_and_leaves_nothing(debander, tmp_path, monkeypatch):
    """Encoding runs in a worker thread beside the network: its failure must still reach the caller."""
    import src.inference.video as video

    src = _write(tmp_path / "clip.mp4", list(range(6)))
    dst = tmp_path / "out.mp4"
    monkeypatch.setattr(video, "rgb_to_frame", _failing_on_call(video.rgb_to_frame, 3, RuntimeError("encoder broke")))
    with pytest.raises(RuntimeError, match="encoder broke"):
        deband_video(debander, src, dst, VideoOptions(quiet=True, batch=1))
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_batches_give_the_same_video(debander, tmp_path):
    """Frames finished while later ones are debanded: batch size and overlap change nothing in the output."""
    src = _write(tmp_path / "clip.mp4", list(range(7)))
    outs = []
    for b in (1, 3):
        dst = tmp_path / f"out{b}.mp4"
        assert deband_video(debander, src, dst, VideoOptions(quiet=True, batch=b, crf=0)) == 7
        with av.open(str(dst)) as c:
            outs.append([(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)])
    assert len(outs[0]) == 7 and [p for p, _ in outs[0]] == [p for p, _ in outs[1]]
    for (_, a), (_, b) in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_dither_does_not_shimmer_on_a_still_picture(debander, tmp_path):
    """8-bit output is dithered with the same pattern in every frame: a still picture stays still."""
    src = tmp_path / "still.mp4"
    ramp = np.linspace(60, 70, 64)[None, :, None]  # 10 codes over the width: between codes nearly everywhere
    img = np.broadcast_to(ramp + np.linspace(0, 0.5, 48)[:, None, None], (48, 64, 3))
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=12, options={"crf": "0", "preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv444p"
        for i in range(4):
            f = av.VideoFrame.from_ndarray(np.round(img).astype(np.uint8), format="rgb24").reformat(format="yuv444p")
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode(None))
    dst = tmp_path / "out.mp4"
    # hold=0: the dither pattern alone must keep it still (held codes would hide a pattern that moves)
    deband_video(debander, src, dst, VideoOptions(quiet=True, batch=1, crf=0, preset="ultrafast", hold=0.0))
    with av.open(str(dst)) as c:
        frames = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    assert len(frames) == 4
    assert all(np.array_equal(frames[0], f) for f in frames[1:])


def _fading_clip(path: Path, step: float, n: int = 6) -> Path:
    """A smooth 64 x 48 gradient brightening by ``step`` codes per frame, lossless 4:4:4."""
    base = np.linspace(60, 70, 64)[None, :, None] + np.linspace(0, 0.5, 48)[:, None, None]
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=12, options={"crf": "0", "preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv444p"
        for i in range(n):
            img = np.broadcast_to(base + i * step, (48, 64, 3))
            f = av.VideoFrame.from_ndarray(np.round(img).astype(np.uint8), format="rgb24").reformat(format="yuv444p")
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode(None))
    return path


def _decoded_luma(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv420p")[:48].astype(int) for f in c.decode(video=0)]


def test_held_codes_follow_real_changes(debander, tmp_path):
    """Codes are held only while a sample's value moves less than ``hold``: a fade of 2 codes per frame
    reaches the output in every frame, by about 2 codes."""
    src = _fading_clip(tmp_path / "fade.mp4", step=2.0)
    dst = tmp_path / "out.mp4"
    deband_video(debander, src, dst, VideoOptions(quiet=True, batch=1, crf=0, preset="ultrafast"))
    luma = _decoded_luma(dst)
    steps = [float((b - a).mean()) for a, b in zip(luma, luma[1:])]
    assert len(steps) == 5 and all(1.2 < s < 2.8 for s in steps), steps


def test_x264_codes_for_fidelity_not_texture(debander, tmp_path):
    """libx264 runs without psychovisual rate-distortion (it re-creates dither as shimmer): the encoder's own
    settings record, which x264 writes into the stream, says so."""
    src = _fading_clip(tmp_path / "clip.mp4", step=0.0, n=2)
    dst = tmp_path / "out.mp4"
    deband_video(debander, src, dst, VideoOptions(quiet=True, batch=1))
    data = dst.read_bytes()
    assert b"x264 - core" in data and b"psy_rd=0.00:0.00" in data
