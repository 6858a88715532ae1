"""Lossy speech encoding (Opus, MP3) through PyAV: FFmpeg's libopus and libmp3lame.

The settings are chosen for speech by measurement (``benchmarks/post_generation.py`` prints
each one's CPU cost, bitrate and spectral distance to the source, beside the settings used
before through soundfile):

- Opus: libopus in its MDCT (CELT) mode (application ``audio``) at complexity 0, in 40 ms
  packets, about 36 kbit/s for speech at 24 kHz: the bitrate and spectral distance the
  stream items had through libsndfile, which fixes the complexity at 10 (SILK/hybrid
  analysis) and cost over ten times the CPU;
- MP3 files: LAME's variable bitrate at quality 2 with its fast algorithm (``-q 7``): the
  spectral distance of libsndfile's default (quality 4, LAME's slower default algorithm)
  at a lower bitrate; the HTTP stream: a constant 64 kbit/s, also ``-q 7``.

``encode`` writes a whole file in memory: an MP3 gets its Xing/LAME header, which carries
the encoder's delay and padding, and an Ogg Opus file its granule positions, so decoders
give back exactly the samples encoded. ``StreamEncoder`` writes one continuous stream and
hands out its bytes as they are produced (HTTP mode; no header is patched afterwards).

PyAV releases the GIL while FFmpeg encodes: jobs encode on as many cores as run them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

LAME_QUALITY_SCALE = 118  # FFmpeg's FF_QP2LAMBDA: global_quality = VBR quality x this


@dataclass(frozen=True)
class Lossy:
    codec: str  # FFmpeg encoder
    container: str  # FFmpeg muxer
    bit_rate: int | None  # target bits a second; None: the options set the quality
    options: Mapping[str, str] = field(default_factory=dict)  # encoder options (FFmpeg's names)


OPUS_SPEECH = Lossy(
    "libopus", "ogg", 38_000, {"application": "audio", "compression_level": "0", "frame_duration": "40"}
)
MP3_FILE = Lossy(
    "libmp3lame",
    "mp3",
    None,
    {"flags": "+qscale", "global_quality": str(2 * LAME_QUALITY_SCALE), "compression_level": "7"},
)
MP3_STREAM = Lossy("libmp3lame", "mp3", 64_000, {"compression_level": "7"})
# By the names ``contract.formats`` gives them.
PROFILES: dict[str, Lossy] = {"opus_speech": OPUS_SPEECH, "mp3_file": MP3_FILE, "mp3_stream": MP3_STREAM}


class _Pipe:
    """A write-only, unseekable file: the muxer cannot go back, and the bytes are taken as
    they come."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


class StreamEncoder:
    """Float32 mono pieces in, the encoded stream's new bytes out (``feed``, then ``finish``)."""

    def __init__(self, spec: Lossy, rate: int, file=None):
        import av  # here, not at import: only jobs that ask for Opus or MP3 load FFmpeg

        self.av = av
        self.rate, self.samples = rate, 0
        self.pipe = _Pipe() if file is None else None
        # flush_packets: each packet reaches the file as it is muxed (no 32 KB I/O buffer)
        options = {"flush_packets": "1"} if file is None else {}
        self.container = av.open(
            file if file is not None else self.pipe, "w", format=spec.container, container_options=options
        )
        self.stream = self.container.add_stream(spec.codec, rate=rate, layout="mono")
        if spec.bit_rate:
            self.stream.codec_context.bit_rate = spec.bit_rate
        self.stream.codec_context.options = dict(spec.options)
        self.container.start_encoding()  # the header now: a file without samples is still a file

    def feed(self, piece: np.ndarray) -> bytes:
        data = np.clip(np.asarray(piece, dtype=np.float32), -1.0, 1.0).reshape(1, -1)
        if data.size:
            frame = self.av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="flt", layout="mono")
            frame.sample_rate = self.rate
            # the first sample at time 0: the muxer then counts the encoder's delay (Opus
            # pre-skip, LAME's delay) out of the timestamps, so decoders trim it
            frame.time_base, frame.pts = Fraction(1, self.rate), self.samples
            self.samples += data.size
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
        return self.pipe.take() if self.pipe else b""

    def finish(self) -> bytes:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()
        return self.pipe.take() if self.pipe else b""


def encode(waveform: np.ndarray, rate: int, spec: Lossy) -> bytes:
    """Mono float32 audio as a whole file of ``spec``'s format."""
    buffer = io.BytesIO()  # seekable: the MP3 muxer writes its Xing/LAME header at the end
    encoder = StreamEncoder(spec, rate, buffer)
    encoder.feed(waveform)
    encoder.finish()
    return buffer.getvalue()
