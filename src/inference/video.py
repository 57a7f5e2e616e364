"""Debanding a video through PyAV: decode, deband the frames in batches, re-encode; copy audio/subtitles.

- Video: every frame is converted to RGB with its own Y'CbCr matrix and range, debanded, converted back and
  dithered to 8 or 10 bits (yuv420p / yuv420p10le; a sample whose value moved less than ``hold`` codes
  since the last frame keeps its code, :class:`~src.colour.dither.HeldQuantizer`), then encoded with libx264
  or libx265 at a CRF (16 = visually lossless by default). Each frame keeps its timestamp, so the frame rate
  (also variable), the frame count and the duration are those of the input.
- Audio and subtitle streams are remuxed packet by packet (no re-encoding); chapters, container/stream
  metadata and the display rotation (phone videos) are copied.
- ``start``/``duration`` process a part; the part's timestamps are shifted to start at 0.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from src.baselines.contour import ContourTracker
from src.colour.dither import HeldQuantizer
from src.colour.yuv import frame_to_rgb, is_full_range, matrix_for, rgb_to_frame
from src.inference.debander import Debander, keep_clipped
from src.inference.formats import VIDEO_CODECS, VIDEO_EXTENSIONS
from src.utils.atomic import atomic_output
from src.utils.errors import ConfigError, DataError

__all__ = ["VIDEO_EXTENSIONS", "VIDEO_CODECS", "VideoOptions", "frames_per_batch", "deband_video"]

AV_TIME_BASE = 1_000_000  # FFmpeg's microsecond unit of container durations and seeks
_AVCOL_SPC_CODE = {"bt709": 1, "bt601": 6, "bt2020": 9}
#: pixels per batch on a CPU: one 1080p frame, two 720p ones (larger batches only add memory traffic there)
CPU_BATCH_PIXELS = 2_100_000


@dataclass
class VideoOptions:
    """Settings of one video run (see ``deband --help``)."""

    steps: int | None = None
    tile: int | None = None
    overlap: int = 32
    seed: int = 0
    codec: str = "libx264"
    crf: float = 16.0
    preset: str = "medium"
    bit_depth: int | None = None  # None: 10 if the input has more than 8 bits, else 8
    dither: str = "blue-noise"
    hold: float = 0.5  # 8-bit codes a sample's value may move before its code changes (HeldQuantizer; 0: off)
    start: float | None = None
    duration: float | None = None
    batch: int | None = None  # frames debanded together; None: frames_per_batch()
    quiet: bool = False


def frames_per_batch(width: int, height: int, device: torch.device) -> int:
    """Video frames to deband together by default.

    On a CPU, as many as fit in :data:`CPU_BATCH_PIXELS` (at least 1): measured end to end on a 2-core CPU
    with the default model (2 threads, float32), 8 frames of 1080p took 21.2-22.1 s in batches of 1 and
    27.8-29.8 s in batches of 4, and 8 frames of 720p 10.9-11.0 / 9.8-9.9 / 10.3-11.3 s in batches of
    1 / 2 / 4. On an accelerator, 4 (raise ``--batch`` there if memory allows).
    """
    if device.type != "cpu":
        return 4
    return max(1, CPU_BATCH_PIXELS // max(1, width * height))


def deband_video(debander: Debander, src: Path, dst: Path, opts: VideoOptions) -> int:
    """Deband ``src`` into ``dst`` (written atomically); returns the number of frames written.

    Raises:
        DataError: unreadable/truncated input, no video stream, an encoder or muxer refusing the settings.
    """
    if opts.codec not in VIDEO_CODECS:
        raise ConfigError(f"--codec must be one of {', '.join(VIDEO_CODECS)}; got {opts.codec!r}")
    if opts.codec not in av.codecs_available:
        raise DataError(f"this PyAV build has no '{opts.codec}' encoder")
    try:
        inp = av.open(str(src))
    except av.error.FFmpegError as e:
        raise DataError(f"cannot read video '{src}': {_av_reason(e)}") from e
    try:
        with atomic_output(dst) as tmp:
            return _run(debander, inp, src, tmp, opts)
    except av.error.FFmpegError as e:
        raise DataError(f"cannot process video '{src}': {_av_reason(e)}") from e
    finally:
        inp.close()


# -------------------------------------------------------------------------------------------------------------
def _run(debander: Debander, inp: av.container.InputContainer, src: Path, tmp: Path, opts: VideoOptions) -> int:
    if not inp.streams.video:
        raise DataError(f"cannot read video '{src}': it has no video stream")
    vin = inp.streams.video[0]
    ctx = vin.codec_context
    w, h = ctx.width, ctx.height
    if w % 2 or h % 2:
        raise DataError(f"cannot encode '{src}': 4:2:0 video needs an even frame size, got {w}x{h}")
    in_bits = max((c.bits for c in ctx.format.components), default=8) if ctx.format else 8
    bits = opts.bit_depth or (10 if in_bits > 8 else 8)
    copied = [s for s in inp.streams if s.type in ("audio", "subtitle")]

    start = opts.start or 0.0
    end = start + opts.duration if opts.duration is not None else None
    part = opts.start is not None or opts.duration is not None

    out = av.open(str(tmp), "w", options=_muxer_options(tmp))
    try:
        out.metadata.update(inp.metadata)
        if not part and inp.chapters():
            out.set_chapters(inp.chapters())
        vout = _add_video_stream(out, vin, opts, bits)
        rotation = _display_rotation(src)
        if rotation:
            vout.set_display_rotation(rotation)
        streams = {vin.index: vout}
        for s in copied:
            try:
                o = out.add_stream_from_template(s)
            except (ValueError, av.error.FFmpegError) as e:
                raise DataError(
                    f"cannot copy {s.type} stream #{s.index} ({s.codec_context.name}) into "
                    f"'{tmp.suffix}': {_av_reason(e)}; choose another output container"
                ) from e
            o.metadata.update(s.metadata)
            streams[s.index] = o

        if opts.start:
            inp.seek(int(opts.start * AV_TIME_BASE), backward=True, any_frame=False)
        total = _expected_frames(vin, inp, start, end)
        # the contour pass runs frame by frame in display order, steadied where the picture is still
        tracker = ContourTracker(debander.contour) if debander.contour is not None else None
        batch_size = opts.batch or frames_per_batch(w, h, debander.device)
        finish = _Finisher(debander, tracker, out, vout, vin, opts, bits, start if part else None)
        last_t = -math.inf
        with _Progress(src.name, total, opts.quiet) as bar, finish:
            batch: list[av.VideoFrame] = []
            for packet in _demux_until(inp, [vin, *copied], end):
                if packet.stream.index != vin.index:
                    finish.copy(packet, streams[packet.stream.index], (start, end) if part else None)
                    continue
                for frame in packet.decode():
                    t = _frame_time(frame, vin)
                    if t < start - 1e-6 or (end is not None and t >= end - 1e-6):
                        continue
                    last_t = max(last_t, t)
                    batch.append(frame)
                    if len(batch) >= batch_size:
                        finish.batch(batch)
                        bar.update(finish.done)
                        batch = []
            if batch:
                finish.batch(batch)
            frames_done = finish.close()
            bar.finish(frames_done)
        if frames_done == 0:
            raise DataError(
                f"no video frames decoded from '{src}'"
                + (" in the requested --start/--duration range" if part else " (corrupt or truncated?)")
            )
        # a small tolerance: an MP4 edit list may legitimately hide a frame or two of the stored count
        if not part and vin.frames and frames_done < vin.frames - max(2, vin.frames // 100):
            raise DataError(f"video '{src}' is truncated or corrupt: decoded {frames_done} of {vin.frames} frames")
        # containers without a frame count (Matroska, WebM) still record the stream's length in their header
        length = None if part or vin.frames else _stated_length(vin, inp)
        rate = float(vin.average_rate or vin.guessed_rate or 0)
        if length is not None and rate and (ends := last_t + 1 / rate) < length - max(2 / rate, length / 100):
            raise DataError(
                f"video '{src}' is truncated or corrupt: its frames end at {ends:.2f} s "
                f"of the {length:.2f} s its header states"
            )
    finally:
        out.close()
    return frames_done


def _muxer_options(path: Path) -> dict[str, str]:
    # moov atom first: the result streams/plays before it is fully downloaded
    return {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".m4v", ".mov") else {}


def _add_video_stream(
    out: av.container.OutputContainer, vin: av.video.stream.VideoStream, opts: VideoOptions, bits: int
) -> av.video.stream.VideoStream:
    rate = vin.average_rate or vin.guessed_rate or Fraction(25, 1)
    options = {"crf": f"{opts.crf:g}", "preset": opts.preset}
    if opts.codec == "libx264":
        # no psychovisual rate-distortion: it spends bits re-creating "texture energy", which on debanded
        # skies is the dither and the network's sub-code wobble, a little differently in every frame. Off, on
        # the video benchmark's 8 clips (8-bit): flicker on flat static pixels 0.110 -> 0.095 codes (the
        # banded input: 0.095), PSNR -0.02 to +0.11 dB, files 5-28% smaller (2-core Intel Xeon, 2026-12-06).
        options["x264-params"] = "psy-rd=0,0"
    if opts.codec == "libx265":
        options["x265-params"] = "log-level=error"
    try:
        vout = out.add_stream(opts.codec, rate=rate, options=options)
    except ValueError as e:  # e.g. WebM only takes VP8/VP9/AV1
        raise DataError(
            f"the output container ({out.format.name}) cannot hold {opts.codec} video; use .mp4, .mkv or .mov"
        ) from e
    ctx = vin.codec_context
    vout.width, vout.height = ctx.width, ctx.height
    vout.pix_fmt = "yuv420p" if bits == 8 else "yuv420p10le"
    vout.time_base = vin.time_base
    vout.codec_context.time_base = vin.time_base
    if ctx.sample_aspect_ratio:
        vout.codec_context.sample_aspect_ratio = ctx.sample_aspect_ratio
    # colour tags: we encode with the input's matrix and range, so say so (players then decode it the same way)
    vout.codec_context.colorspace = _AVCOL_SPC_CODE[_matrix_for(vin)]
    vout.codec_context.color_range = 2 if _full_range(vin) else 1
    if int(ctx.color_primaries) not in (0, 2):
        vout.codec_context.color_primaries = ctx.color_primaries
    if int(ctx.color_trc) not in (0, 2):
        vout.codec_context.color_trc = ctx.color_trc
    if opts.codec == "libx265" and out.format.name in ("mov", "mp4", "mov,mp4,m4a,3gp,3g2,mj2"):
        vout.codec_tag = "hvc1"  # Apple players want hvc1 for HEVC in MP4/MOV
    vout.metadata.update({k: v for k, v in vin.metadata.items() if k not in ("encoder", "DURATION")})
    return vout


def _display_rotation(src: Path) -> int:
    """The display rotation of the first video frame (phone videos are stored sideways plus a display
    matrix); read in a separate open so the main demuxer is not disturbed. 0 when none or unreadable."""
    try:
        with av.open(str(src)) as c:
            for frame in c.decode(video=0):
                return int(round(frame.rotation or 0))
    except (av.error.FFmpegError, AttributeError, ValueError):
        pass
    return 0


def _matrix_for(vin: av.video.stream.VideoStream) -> str:
    return matrix_for(vin.codec_context.colorspace, vin.codec_context.height)


def _full_range(vin: av.video.stream.VideoStream) -> bool:
    ctx = vin.codec_context
    return is_full_range(ctx.color_range, ctx.format.name if ctx.format is not None else "")


class _Finisher:
    """Runs the network on each batch in the calling thread and everything after it (the contour pass,
    conversion, dither, encoding and all muxing, audio included) in one worker thread, in submission order,
    so one batch is finished while the next is decoded and debanded. At most one finished batch waits.

    ``start``: the part's start in seconds (timestamps are shifted by it), or None for the whole video.
    """

    def __init__(
        self,
        debander: Debander,
        tracker: ContourTracker | None,
        out: av.container.OutputContainer,
        vout: av.video.stream.VideoStream,
        vin: av.video.stream.VideoStream,
        opts: VideoOptions,
        bits: int,
        start: float | None,
    ) -> None:
        self.debander, self.tracker, self.out, self.vout, self.vin = debander, tracker, out, vout, vin
        self.opts, self.bits = opts, bits
        self.shift = int(round(start / vin.time_base)) if start else 0
        self.matrix, self.full_range = _matrix_for(vin), _full_range(vin)
        # 10-bit steps are a quarter of an 8-bit code: nothing to hide, so only 8-bit output is dithered
        self.dither = opts.dither if bits == 8 else "none"
        self.done = 0
        # still content keeps its codes from frame to frame (no re-dithered noise for the encoder to chase)
        self.quantizer = HeldQuantizer(opts.hold)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="deband-encode")
        self._pending: deque[Future] = deque()

    def __enter__(self) -> _Finisher:
        return self

    def __exit__(self, *exc: object) -> None:
        # on an error or interrupt, queued work is dropped; the running task ends before the container closes
        self._pool.shutdown(wait=True, cancel_futures=True)

    def copy(self, packet: av.Packet, ostream: av.stream.Stream, part: tuple[float, float | None] | None) -> None:
        self._submit(_copy_packet, self.out, packet, ostream, part)

    def batch(self, frames: list[av.VideoFrame]) -> None:
        """Deband ``frames`` here, then queue their finishing; waits while an earlier batch is still queued."""
        opts = self.opts
        x = torch.from_numpy(np.stack([frame_to_rgb(f) for f in frames])).permute(0, 3, 1, 2)  # (B, 3, H, W)
        y = self.debander.deband_batch(
            x, steps=opts.steps, tile=opts.tile, overlap=opts.overlap, seed=opts.seed, contour=self.tracker is None
        )
        while len(self._pending) > 1:
            self._collect()
        self._submit(self._finish, frames, x, y)

    def close(self) -> int:
        """Flush the encoder and wait for everything; returns the frames written."""
        self._submit(lambda: self.out.mux(self.vout.encode(None)))
        while self._pending:
            self._collect()
        return self.done

    def _submit(self, fn, *args) -> None:  # noqa: ANN001 - any callable
        self._pending.append(self._pool.submit(fn, *args))
        while self._pending and self._pending[0].done():
            self._collect()

    def _collect(self) -> None:
        n = self._pending.popleft().result()  # re-raises the worker's error here
        if isinstance(n, int):
            self.done += n

    def _finish(self, frames: list[av.VideoFrame], x: torch.Tensor, y: torch.Tensor) -> int:
        if self.tracker is not None:
            # y already keeps the clipped samples (the tracker reads them so); its correction may move them
            y = keep_clipped(x, torch.stack([self.tracker(xi, yi) for xi, yi in zip(x, y)]))
        y = y.permute(0, 2, 3, 1).numpy()
        for i, src in enumerate(frames):
            f = rgb_to_frame(
                y[i], self.bits, self.matrix, self.full_range, self.dither, self.opts.seed, quantizer=self.quantizer
            )
            # same timestamp as the source frame: keeps the frame rate (even variable), count and duration
            f.pts = (src.pts if src.pts is not None else src.index) - self.shift
            f.time_base = self.vin.time_base
            self.out.mux(self.vout.encode(f))
        return len(frames)


def _copy_packet(
    out: av.container.OutputContainer,
    packet: av.Packet,
    ostream: av.stream.Stream,
    part: tuple[float, float | None] | None,
) -> None:
    """Remux one audio/subtitle packet unchanged; with ``part = (start, end)`` only packets starting in
    [start, end) are kept, their timestamps shifted by -start."""
    if packet.dts is None and packet.pts is None:
        return  # the demuxer's end-of-stream flush packet
    if part is not None:
        start, end = part
        tb = packet.time_base
        t = float((packet.pts if packet.pts is not None else packet.dts) * tb)
        if t < start - 1e-6 or (end is not None and t >= end - 1e-6):
            return
        shift = int(round(start / tb))
        if packet.pts is not None:
            packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
    packet.stream = ostream
    out.mux(packet)


def _frame_time(frame: av.VideoFrame, vin: av.video.stream.VideoStream) -> float:
    if frame.pts is None:
        return float(frame.index / (vin.average_rate or 25))
    return float(frame.pts * vin.time_base)


def _demux_until(
    inp: av.container.InputContainer, streams: list[av.stream.Stream], end: float | None
) -> Iterator[av.Packet]:
    """Demux ``streams``; with an ``end``, stop once every stream has passed it (nothing later is needed)."""
    past: set[int] = set()
    for packet in inp.demux(streams):
        yield packet
        if end is not None and packet.pts is not None and packet.time_base is not None:
            if float(packet.pts * packet.time_base) >= end + 1.0:  # 1 s margin: B-frames come out of order
                past.add(packet.stream.index)
                if len(past) == len(streams):
                    return


def _stated_length(vin: av.video.stream.VideoStream, inp: av.container.InputContainer) -> float | None:
    """The video stream's length in seconds as the file's header states it, where it does: the stream's
    duration, Matroska's per-stream ``DURATION`` tag, or the container's when the video is its only stream."""
    if vin.duration and vin.time_base:
        return float(vin.duration * vin.time_base)
    tag = next((v for k, v in vin.metadata.items() if k.upper() == "DURATION"), None)
    if tag:
        try:
            h, m, sec = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec)
        except ValueError:
            pass
    if len(inp.streams) == 1 and inp.duration:
        return inp.duration / AV_TIME_BASE
    return None


def _expected_frames(
    vin: av.video.stream.VideoStream, inp: av.container.InputContainer, start: float, end: float | None
) -> int | None:
    """Frames to expect, for the progress bar: the stream's count, else its duration (or the part's) x rate."""
    if vin.frames and not start and end is None:
        return vin.frames
    rate = float(vin.average_rate or vin.guessed_rate or 0)
    if vin.duration and vin.time_base:
        length: float | None = float(vin.duration * vin.time_base)
    else:
        length = inp.duration / AV_TIME_BASE if inp.duration else None
    if end is not None:
        length = min(end, length) if length is not None else end
    if length is not None and rate:
        return max(1, int(round((length - start) * rate)))
    return None


def _av_reason(e: BaseException) -> str:
    text = getattr(e, "strerror", None) or str(e)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(e).__name__


class _Progress:
    """A rich progress bar with frames, fps and ETA on stderr (nothing when quiet)."""

    def __init__(self, name: str, total: int | None, quiet: bool) -> None:
        self.name, self.total, self.quiet = name, total, quiet
        self._progress = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> _Progress:
        if self.quiet:
            return self
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fps]} fps"),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=False,
        )
        self._progress.__enter__()
        self._task = self._progress.add_task(self.name, total=self.total, fps="-")
        return self

    def update(self, done: int) -> None:
        if self._progress is None:
            return
        fps = done / max(time.perf_counter() - self._t0, 1e-9)
        total = max(self.total or 0, done) or None
        self._progress.update(self._task, completed=done, total=total, fps=f"{fps:.2f}")

    def finish(self, done: int) -> None:
        """The real count is known at the end: the estimate from the duration can be off."""
        self.total = done
        self.update(done)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
