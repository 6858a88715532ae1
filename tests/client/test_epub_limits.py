"""Issue 26 finding 12: an EPUB zip bomb is refused from its declared sizes before anything is
inflated (a 1.5 MB book inflating to 1.5 GiB took the client to 3.1 GB). The bomb is generated
here: a valid EPUB skeleton plus one chapter of zeros that deflates about 1000:1."""

from __future__ import annotations

import tracemalloc
import zipfile

import pytest
from higgs_tts.book_source import read_book
from higgs_tts.errors import InputError

from tests.client.conftest import client_env, run_cli
from tests.client.test_cli import assert_clean_failure

CONTAINER = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"""
OPF = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">bomb</dc:identifier>
<dc:title>Bomb</dc:title><dc:language>en</dc:language></metadata>
<manifest><item id="c1" href="c1.xhtml" media-type="application/xhtml+xml"/></manifest>
<spine><itemref idref="c1"/></spine></package>"""


def write_bomb(path, inflated_mib: int) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", CONTAINER)
        archive.writestr("OEBPS/content.opf", OPF)
        info = zipfile.ZipInfo("OEBPS/c1.xhtml")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(b"<html><body><p>")
            chunk = b"\0" * 2**20
            for _ in range(inflated_mib):
                member.write(chunk)


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    bomb = tmp_path / "bomb.epub"
    write_bomb(bomb, 256)
    assert bomb.stat().st_size < 2 * 2**20  # under 2 MB on disk, 256 MiB inflated
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="possible zip bomb") as refused:
            read_book(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MiB allocated reading a bomb"  # the old code: > 256 MiB
    assert "c1.xhtml" in str(refused.value) and "256.0 MiB" in str(refused.value)


def test_the_cli_refuses_it_with_exit_2(simulated, tmp_path):
    fake, _ = simulated
    bomb = tmp_path / "bomb.epub"
    write_bomb(bomb, 64)
    result = run_cli(["book", str(bomb), "-o", str(tmp_path / "out")], client_env(fake))
    assert_clean_failure(result, 2, "refused as a possible zip bomb")
    assert fake.counts.runs == 0 and not (tmp_path / "out").exists()


def test_too_much_in_all_is_refused(tmp_path, monkeypatch):
    """Many members, each under the per-member limits, that add up beyond the total."""
    import higgs_tts.book_source as book_source

    monkeypatch.setattr(book_source, "MAX_EPUB_BYTES", 3 * 2**20)
    book = tmp_path / "many.epub"
    with zipfile.ZipFile(book, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("mimetype", "application/epub+zip")
        for n in range(4):
            archive.writestr(f"OEBPS/image{n}.bin", bytes(range(256)) * 4096)  # 1 MiB each, stored
    with pytest.raises(InputError, match=r"declares 4\.0 MiB uncompressed in 5 members; refused"):
        read_book(book)
