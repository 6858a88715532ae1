"""Reading books (.txt, .md, EPUB built here with EbookLib) and cutting them into pieces."""

from __future__ import annotations

from pathlib import Path

import pytest
from higgs_tts.book_source import read_book
from higgs_tts.errors import InputError
from higgs_tts.pieces import plan_pieces


def build_epub(path: Path, title: str, chapter_titles: list[str], with_cover_page: bool = True) -> Path:
    """A small EPUB 3 with a table of contents; each chapter has its own heading and two paragraphs."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("test-book-1")
    book.set_title(title)
    book.set_language("en")
    items = []
    if with_cover_page:  # a page with no text: not a chapter
        cover = epub.EpubHtml(title="Cover", file_name="cover.xhtml", lang="en")
        cover.content = "<html><body><div><img src='cover.png' alt=''/></div></body></html>"
        book.add_item(cover)
        items.append(cover)
    chapters = []
    for n, chapter_title in enumerate(chapter_titles, 1):
        chapter = epub.EpubHtml(title=chapter_title, file_name=f"chap_{n}.xhtml", lang="en")
        chapter.content = (
            f"<html><body><h1>{chapter_title}</h1><p>The story of part {n} begins.</p>"
            f"<p>It ends quietly, as part {n} should.</p></body></html>"
        )
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = [epub.Link(c.file_name, c.title, f"c{n}") for n, c in enumerate(chapters, 1)]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = [*items, "nav", *chapters]
    epub.write_epub(str(path), book)
    return path


def test_epub_chapters_come_from_its_table_of_contents(tmp_path):
    path = build_epub(tmp_path / "b.epub", "Three Nights", ["The Harbour", "A Letter from Home", "Night Train"])
    book = read_book(path)
    assert book.title == "Three Nights"
    # neither the cover (no text) nor the navigation document (the contents list) is a chapter
    assert [c.title for c in book.chapters] == ["The Harbour", "A Letter from Home", "Night Train"]
    harbour = next(c for c in book.chapters if c.title == "The Harbour")
    assert harbour.paragraphs == ("The Harbour", "The story of part 1 begins.", "It ends quietly, as part 1 should.")


def test_text_chapters_start_at_chapter_lines(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text(
        "A note before it all.\n\nCHAPTER I\n\nIt was a dark\nand stormy night.\n\nThe rain fell.\n\n"
        "Chapter II: Morning\n\nThe sun came up.\n"
    )
    book = read_book(path)
    assert book.title == "story"
    assert [c.title for c in book.chapters] == ["story", "CHAPTER I", "Chapter II: Morning"]
    assert book.chapters[0].paragraphs == ("A note before it all.",)  # no heading: not announced
    assert book.chapters[1].paragraphs == ("CHAPTER I", "It was a dark and stormy night.", "The rain fell.")


def test_markdown_single_top_heading_is_the_title(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text(
        "# My Guide\n\nWelcome, *reader*.\n\n## Setup\n\nInstall it with `pip`.\n\n```\ncode is not read\n```\n\n"
        "## Use\n\n- one thing\n- another\n"
    )
    book = read_book(path)
    assert book.title == "My Guide"
    assert [c.title for c in book.chapters] == ["My Guide", "Setup", "Use"]
    assert book.chapters[1].paragraphs == ("Setup", "Install it with pip.")
    assert book.chapters[2].paragraphs == ("Use", "one thing", "another")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"", "is empty"),
        ("blank.md", b"  \n\n \n", "is empty"),
        ("binary.txt", b"\x7fELF\x02\x01\x00\x00binary", "looks binary"),
        ("latin.txt", "caf\xe9".encode("latin-1"), "not UTF-8"),
        ("book.pdf", b"%PDF-1.4", "unsupported file type"),
        ("fake.epub", b"not a zip at all", "not an EPUB"),
        ("symbols.txt", b"* * *\n\n---\n", "no speakable text"),
    ],
)
def test_unusable_files_are_refused_with_a_reason(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_book(path)


def test_a_chapter_with_nothing_to_speak_is_named_or_skipped(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("Chapter 1\n\nWords here.\n\nChapter 2\n\n* * *\n\nChapter 3\n\nMore words.\n")
    with pytest.raises(InputError, match="chapter 2 'Chapter 2' has no speakable text.*--skip-empty-chapters"):
        read_book(path)
    book = read_book(path, skip_empty=True)
    assert [c.title for c in book.chapters] == ["Chapter 1", "Chapter 3"]
    assert any("Chapter 2" in notice for notice in book.notices)


def test_pieces_keep_every_word_in_order_within_the_size(tmp_path):
    paragraph = " ".join(f"Sentence {n} has a few words in it." for n in range(30))  # 240 words
    path = tmp_path / "book.txt"
    path.write_text(f"Chapter 1\n\nShort opening.\n\n{paragraph}\n\nChapter 2\n\n{'word ' * 130}end.\n")
    book = read_book(path)
    pieces = plan_pieces(book, max_words=50)
    assert [p.index for p in pieces] == list(range(len(pieces)))
    titles = {c.title for c in book.chapters}
    assert all(p.words <= 50 + (2 if p.text.split("\n")[0] in titles else 0) for p in pieces)
    for number, chapter in enumerate(book.chapters):
        words = [w for p in pieces if p.chapter == number for w in p.text.split()]
        assert words == " ".join(chapter.paragraphs).split()
    # cut at sentence ends inside the long paragraph, at words only in the 131-word sentence
    long_paragraph = [p for p in pieces if p.chapter == 0][1:]
    assert all(p.text.rstrip().endswith(".") for p in long_paragraph)
    assert [p.ends_paragraph for p in pieces if p.chapter == 0][-1] is True
    assert sum(1 for p in pieces if p.chapter == 1) == 3
