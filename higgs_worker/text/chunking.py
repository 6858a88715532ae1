"""Split long text into chunks that are generated one after another."""

from __future__ import annotations

import re

SPEAKER_TAG = re.compile(r"\[SPEAKER\d{1,2}\]")
SENTENCE_END = re.compile(r"(?<=[.!?。！？;；])\s+|\n{2,}")


def has_speaker_tags(text: str) -> bool:
    return bool(SPEAKER_TAG.search(text))


def speaker_of(chunk: str) -> str | None:
    """The speaker label (``SPEAKER0``) a chunk starts with, or None."""
    match = SPEAKER_TAG.match(chunk.strip())
    return match.group(0)[1:-1] if match else None


def split_speakers(text: str) -> list[str]:
    """One chunk per speaker turn, each starting with its [SPEAKERn] tag."""
    starts = [m.start() for m in SPEAKER_TAG.finditer(text)]
    if not starts:
        return [text.strip()] if text.strip() else []
    pieces = [text[: starts[0]]] if starts[0] > 0 else []
    pieces += [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)], strict=True)]
    return [p.strip() for p in pieces if p.strip()]


def split_words(text: str, max_words: int) -> list[str]:
    """Sentences grouped into chunks of at most ``max_words`` words (longer sentences
    are cut at word boundaries)."""
    chunks: list[str] = []
    current: list[str] = []
    for sentence in (s.strip() for s in SENTENCE_END.split(text)):
        if not sentence:
            continue
        words = sentence.split()
        while len(words) > max_words:
            if current:
                chunks.append(" ".join(current))
                current = []
            chunks.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if current and len(current) + len(words) > max_words:
            chunks.append(" ".join(current))
            current = []
        current += words
    if current:
        chunks.append(" ".join(current))
    return chunks


def split_text(text: str, method: str, max_words: int) -> list[str]:
    """``method`` is auto, none, word or speaker (see the job input contract)."""
    text = text.strip()
    if method == "none":
        return [text]
    if method == "speaker" or (method == "auto" and has_speaker_tags(text)):
        turns = split_speakers(text)
        if method == "auto":
            # long turns are still cut by words, keeping the speaker tag on each piece
            out: list[str] = []
            for turn in turns:
                tag = SPEAKER_TAG.match(turn)
                body = turn[tag.end() :].strip() if tag else turn
                for piece in split_words(body, max_words) or [body]:
                    out.append(f"{tag.group(0)} {piece}" if tag else piece)
            return out
        return turns
    if method == "word" or len(text.split()) > max_words:
        return split_words(text, max_words) or [text]
    return [text]
