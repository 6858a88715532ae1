"""The client's format list against the worker's registry. The client cannot import the worker
(it is installed alone), so it keeps its own copy (``higgs_tts.formats``); this test fails when
the copy and ``higgs_worker/contract/formats.py`` differ, and checks that the formats the client
writes or asks for itself are ones the worker knows, written the way the worker writes them."""

from __future__ import annotations

import subprocess
import sys

from higgs_tts import formats as client

from higgs_worker.contract import formats as worker
from higgs_worker.contract.schema import OutputFormat
from tests.conftest import ROOT


def test_the_clients_output_formats_are_the_workers():
    assert client.OUTPUT_FORMATS == tuple(f.name for f in worker.FORMATS), (
        "higgs_tts/formats.py OUTPUT_FORMATS has drifted from higgs_worker/contract/formats.py FORMATS"
    )
    assert set(client.OUTPUT_FORMATS) == {f.value for f in OutputFormat}  # what the job schema accepts


def test_book_asks_for_a_lossless_format_the_worker_writes():
    assert client.PIECE_FORMAT in worker.BY_NAME and not worker.BY_NAME[client.PIECE_FORMAT].lossy


def test_chapter_formats_are_worker_formats_written_as_the_worker_writes_them():
    for name, (container, subtype) in client.CHAPTER_FORMATS.items():
        assert name in client.OUTPUT_FORMATS, name
        ours = worker.BY_NAME[name]
        if ours.container is not None:  # the worker writes it with soundfile too: the same file
            assert (container, subtype) == (ours.container, ours.subtype), name


def test_the_cli_offers_exactly_the_lists():
    """``higgs-tts say --help`` names every output format; ``book --format`` accepts the chapter
    formats and nothing else (the client's own entry point, in a child process)."""
    env_path = str(ROOT / "client")
    say = subprocess.run(
        [sys.executable, "-m", "higgs_tts", "say", "--help"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path},
        check=True,
    ).stdout
    assert client.listing(client.OUTPUT_FORMATS) in " ".join(say.split())
    refused = subprocess.run(
        [sys.executable, "-m", "higgs_tts", "book", "b.txt", "-o", "out", "--format", "ogg"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path},
    )
    choices = ",".join(client.CHAPTER_FORMATS)
    assert refused.returncode == 2 and f"[--format {{{choices}}}]" in refused.stderr, refused.stderr
    assert "invalid choice: 'ogg'" in refused.stderr
