"""A book file (``.txt``, ``.md``, ``.epub``) as a title and chapters of paragraphs.

- ``.txt``: paragraphs are separated by blank lines (hard-wrapped lines are joined);
  a short line after a blank line that starts with Chapter, Part, Book, Prologue,
  Epilogue, Preface, Introduction, Interlude or Afterword starts a chapter. Text before
  the first such line is a chapter of its own; without any, the file is one chapter.
- ``.md`` (markdown-it-py): chapters at ``#`` headings, or at ``##`` when the file has a
  single ``#`` heading (then the book's title); code blocks and HTML are not read.
- ``.epub`` (EbookLib): the spine's documents in reading order, titled from the book's
  own table of contents (else the document's first heading); the navigation document,
  documents outside the reading order (``linear="no"``) and documents with no speakable
  text (cover, images) are not chapters.

Each chapter starts with its title, spoken (audiobooks announce their chapters).
A chapter whose body has nothing to speak (only symbols) is refused, naming it, unless
``skip_empty`` drops it.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError

SUFFIXES = (".txt", ".md", ".markdown", ".epub")
SPEAKABLE = re.compile(r"\w")  # a letter or digit in any script
TXT_HEADING = re.compile(
    r"^(chapter|part|book|prologue|epilogue|preface|introduction|interlude|afterword)\b", re.IGNORECASE
)
MAX_HEADING_CHARS = 80
BLOCK_TAGS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "dd", "dt", "pre", "div", "td", "th")


@dataclass(frozen=True)
class Chapter:
    title: str
    paragraphs: tuple[str, ...]  # the spoken text, title first


@dataclass(frozen=True)
class Book:
    title: str
    chapters: tuple[Chapter, ...]
    notices: tuple[str, ...] = field(default=())  # what was left out, for the user

    @property
    def words(self) -> int:
        return sum(len(p.split()) for chapter in self.chapters for p in chapter.paragraphs)


def speakable(text: str) -> bool:
    return bool(SPEAKABLE.search(text))


def read_book(path: str | Path, title: str | None = None, skip_empty: bool = False) -> Book:
    """Read ``path``; an :class:`InputError` says why a file cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{path}: unsupported file type {suffix or '(none)'}; use .txt, .md or .epub")
    data = path.read_bytes()
    if not data.strip():
        raise InputError(f"{path} is empty: nothing to read")
    if suffix == ".epub":
        book_title, raw, notices = _epub(path, data)
    else:
        text = _decode_text(path, data)
        reader = _markdown if suffix in (".md", ".markdown") else _plain_text
        book_title, raw = reader(text, path.stem)
        notices = []
    chapters, dropped = _checked(path, raw, skip_empty)
    if not chapters:
        raise InputError(f"{path} has no speakable text (no letters or digits)")
    return Book(title or book_title, tuple(chapters), tuple(notices + dropped))


def _decode_text(path: Path, data: bytes) -> str:
    if b"\x00" in data[:65536]:
        raise InputError(f"{path} looks binary (it contains NUL bytes); give a .txt or .md text file, or an .epub")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _checked(path: Path, raw: list[tuple[str, list[str], bool]], skip_empty: bool) -> tuple[list[Chapter], list[str]]:
    """Chapters with something to speak (the title first when it is a real heading)."""
    chapters, empty = [], []
    for number, (title, body, announce) in enumerate(raw, 1):
        body = [p for p in body if p.strip()]
        if not any(speakable(p) for p in body):
            empty.append(f"chapter {number} {title!r}")
            continue
        spoken = [title] if announce and speakable(title) else []
        chapters.append(Chapter(title, tuple(spoken + body)))
    if empty and not skip_empty:
        raise InputError(
            f"{path}: {', '.join(empty)} has no speakable text (only symbols or nothing under the heading); "
            "add the words, remove the heading, or pass --skip-empty-chapters"
        )
    return chapters, [f"left out (no speakable text): {what}" for what in empty]


# -- plain text --------------------------------------------------------------------------


def _paragraphs(text: str) -> list[str]:
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]


def _plain_text(text: str, stem: str) -> tuple[str, list[tuple[str, list[str], bool]]]:
    chapters: list[tuple[str, list[str], bool]] = []
    current: tuple[str, list[str], bool] = (stem, [], False)  # text before the first heading
    for block in _paragraphs(text.replace("\r\n", "\n")):
        if len(block) <= MAX_HEADING_CHARS and TXT_HEADING.match(block):
            chapters.append(current)
            current = (block, [], True)
        else:
            current[1].append(block)
    chapters.append(current)
    return stem, [c for c in chapters if c[1] or c[2]]


# -- markdown ----------------------------------------------------------------------------


def _markdown(text: str, stem: str) -> tuple[str, list[tuple[str, list[str], bool]]]:
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(text)
    blocks: list[tuple[int, str]] = []  # (heading level or 0, text)
    for i, token in enumerate(tokens):
        if token.type != "inline":
            continue
        opener = tokens[i - 1]
        level = int(opener.tag[1]) if opener.type == "heading_open" else 0
        words = _inline_text(token)
        if words:
            blocks.append((level, words))
    levels = [level for level, _ in blocks if level]
    title, split_level = stem, None
    if levels:
        top = min(levels)
        if levels.count(top) == 1 and blocks[0][0] == top and len(set(levels)) > 1:
            title = blocks[0][1]
            blocks = blocks[1:]
            split_level = min(level for level, _ in blocks if level)
        else:
            split_level = top
    chapters: list[tuple[str, list[str], bool]] = []
    current: tuple[str, list[str], bool] = (title, [], False)  # text before the first chapter heading
    for level, words in blocks:
        if split_level is not None and level == split_level:
            chapters.append(current)
            current = (words, [], True)
        else:
            current[1].append(words)
    chapters.append(current)
    return title, [c for c in chapters if c[1] or c[2]]


def _inline_text(token) -> str:
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            continue
    return " ".join("".join(parts).split())


# -- EPUB --------------------------------------------------------------------------------


def _epub(path: Path, data: bytes) -> tuple[str, list[tuple[str, list[str], bool]], list[str]]:
    import ebooklib
    from ebooklib import epub

    if not zipfile.is_zipfile(path):
        raise InputError(f"{path} is not an EPUB (not a zip archive)")
    _check_zip_sizes(path)
    try:
        book = epub.read_epub(str(path), options={"ignore_ncx": False})
    except Exception as exc:  # EbookLib raises many kinds for a damaged book
        raise InputError(f"{path} is not a readable EPUB: {type(exc).__name__}: {str(exc)[:200]}") from None
    titles = _toc_titles(book.toc)
    metadata = book.get_metadata("DC", "title")
    book_title = metadata[0][0].strip() if metadata and metadata[0][0].strip() else path.stem
    chapters, notices = [], []
    for idref, linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
            continue  # not text, or the navigation document (the table of contents itself)
        if str(linear).lower() == "no":
            continue  # auxiliary content outside the reading order (notes, answers)
        headings, paragraphs = _html_blocks(item.get_content())
        name = item.get_name()
        if not any(speakable(p) for p in paragraphs):
            if name in titles:
                notices.append(f"left out (no speakable text): {titles[name]!r} ({name})")
            continue
        title = titles.get(name) or (headings[0] if headings else f"Section {len(chapters) + 1}")
        if paragraphs and " ".join(paragraphs[0].split()).lower() == " ".join(title.split()).lower():
            paragraphs = paragraphs[1:]  # the document's own heading repeats the title
        chapters.append((title, paragraphs, True))
    return book_title, chapters, notices


# An EPUB is read whole into memory (EbookLib), so its declared sizes are checked first: a zip
# bomb (1.5 MB inflating to 1.5 GiB) took the client to 3.1 GB. zipfile stops a member at its
# declared size (and fails its CRC), so the central directory's sizes bound what is read.
MAX_EPUB_BYTES = 512 * 2**20  # all members, uncompressed
MAX_EPUB_MEMBER_BYTES = 128 * 2**20
MAX_EPUB_RATIO = 100  # uncompressed / compressed, for a member over RATIO_CHECK_BYTES
RATIO_CHECK_BYTES = 2**20  # (text compresses 3-10x; deflate's limit is about 1000x)


def _check_zip_sizes(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{path} is not a readable EPUB: {type(exc).__name__}: {str(exc)[:200]}") from None
    total = 0
    for member in members:
        total += member.file_size
        ratio = member.file_size / max(1, member.compress_size)
        if member.file_size > MAX_EPUB_MEMBER_BYTES or (
            member.file_size > RATIO_CHECK_BYTES and ratio > MAX_EPUB_RATIO
        ):
            raise InputError(
                f"{path}: member {member.filename[:80]!r} declares {_mib(member.file_size)} from"
                f" {_mib(member.compress_size)} compressed (ratio {ratio:.0f}); refused as a possible zip bomb"
                f" (limits: {_mib(MAX_EPUB_MEMBER_BYTES)} a member, ratio {MAX_EPUB_RATIO})"
            )
    if total > MAX_EPUB_BYTES:
        raise InputError(
            f"{path} declares {_mib(total)} uncompressed in {len(members)} members; refused"
            f" (limit {_mib(MAX_EPUB_BYTES)}: the client reads an EPUB into memory)"
        )


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _toc_titles(toc) -> dict[str, str]:
    """file name -> title, from the table of contents (first entry of a file wins)."""
    titles: dict[str, str] = {}

    def walk(entries):
        for entry in entries:
            if isinstance(entry, tuple):  # (Section, children)
                section, children = entry
                add(section)
                walk(children)
            elif isinstance(entry, list):
                walk(entry)
            else:
                add(entry)

    def add(link):
        href = getattr(link, "href", None)
        title = " ".join((getattr(link, "title", None) or "").split())
        if href and title:
            titles.setdefault(href.split("#")[0], title)

    walk(toc)
    return titles


def _html_blocks(content: bytes) -> tuple[list[str], list[str]]:
    """(headings, paragraphs) of an XHTML document: the text of each innermost block element."""
    from lxml import html

    try:
        root = html.fromstring(content)
    except Exception:  # an empty or broken document
        return [], []
    for unwanted in root.xpath("//script|//style|//head"):
        unwanted.drop_tree()
    headings, paragraphs = [], []
    for element in root.iter(*BLOCK_TAGS):
        if any(child.tag in BLOCK_TAGS for child in element.iterdescendants()):
            continue  # an outer block: its inner blocks are read instead
        text = " ".join(element.text_content().split())
        if not text:
            continue
        if element.tag in ("h1", "h2", "h3"):
            headings.append(text)
        paragraphs.append(text)
    return headings, paragraphs
