"""The format registry (``contract.formats``): the schema's enum, the encoders, the OpenAI
route and storage's hint all come from it, so they cannot disagree again (Opus was
``audio/opus`` for the job and ``audio/ogg`` on the OpenAI route)."""

from __future__ import annotations

import numpy as np
import pytest

from higgs_worker.audio import lossy
from higgs_worker.audio.codecs import CODECS, encode
from higgs_worker.contract.formats import BY_NAME, FORMATS, LOSSY_FORMATS, OPENAI_FORMATS
from higgs_worker.contract.schema import OutputFormat
from higgs_worker.http.openai_speech import AudioEncoder, SpeechOptions


def test_every_layer_knows_the_same_formats():
    names = [f.name for f in FORMATS]
    assert [f.value for f in OutputFormat] == names
    assert list(CODECS) == names
    assert set(OPENAI_FORMATS) <= set(names) and set(LOSSY_FORMATS) == {"mp3", "ogg", "opus"}
    for f in FORMATS:
        for profile in (f.file_profile, f.stream_profile):
            assert profile is None or profile in lossy.PROFILES


@pytest.mark.parametrize("name", OPENAI_FORMATS)
def test_the_openai_route_and_the_job_name_one_content_type(name):
    assert SpeechOptions(name, "audio").content_type == CODECS[name].content_type == BY_NAME[name].content_type


@pytest.mark.parametrize("name", ["opus", "ogg"])
def test_ogg_files_are_audio_ogg(name):
    """RFC 7845 section 9: an Ogg Opus file is audio/ogg; audio/opus is Opus over RTP (RFC 7587)."""
    tone = (0.3 * np.sin(np.arange(24000) * 2 * np.pi * 220 / 24000)).astype(np.float32)
    assert encode(tone, 24000, name)[:4] == b"OggS"
    assert BY_NAME[name].content_type == "audio/ogg"
    if name in OPENAI_FORMATS:
        streamed = AudioEncoder(name)
        assert (streamed.feed(tone) + streamed.finish())[:4] == b"OggS"
