"""Read documents (Markdown, plain text, HTML, PDF) and split them into chunks for embedding.

A chunk never spans two sections: splitting follows headings first, then paragraphs, then
sentences, so each chunk carries the heading trail it sits under and stays within a token
budget. Reading refuses what it cannot honestly turn into text (binary files, files over
the size limit, PDFs without a text layer) with a message naming the file and the reason.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

SUPPORTED = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text"} | {
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}


class DocumentError(ValueError):
    """A file that cannot be ingested; the message says why."""


@dataclass(frozen=True)
class Section:
    """A run of text under one heading trail."""

    trail: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class Chunk:
    """A piece of a document small enough to embed, with the headings it sits under."""

    text: str
    heading: str
    position: int


def sha256_file(path: Path) -> str:
    """The file's content hash, read in blocks (a large file is never held whole)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sections(path: Path, max_bytes: int) -> list[Section]:
    """The document's text, split into sections by its headings."""
    kind = SUPPORTED.get(path.suffix.lower())
    if kind is None:
        raise DocumentError(f"unsupported file type {path.suffix or '(none)'!r}")
    size = path.stat().st_size
    if size > max_bytes:
        raise DocumentError(f"{size:,} bytes is over the {max_bytes:,}-byte limit per file")
    data = path.read_bytes()
    if kind == "pdf":
        return _pdf_sections(path, data)
    if b"\x00" in data[:8192]:
        raise DocumentError("binary content (NUL bytes) in a text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DocumentError(f"not UTF-8 text (byte {err.start})") from None
    if kind == "markdown":
        return _markdown_sections(text)
    if kind == "html":
        return _html_sections(text)
    return [Section((), text)]


_ATX = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^(```|~~~)")


def _markdown_sections(text: str) -> list[Section]:
    sections: list[Section] = []
    trail: list[tuple[int, str]] = []
    lines: list[str] = []
    fenced = False

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body:
            sections.append(Section(tuple(title for _, title in trail), body))
        lines.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _ATX.match(line)
        if heading is None:
            lines.append(line)
            continue
        flush()
        level = len(heading.group(1))
        while trail and trail[-1][0] >= level:
            trail.pop()
        trail.append((level, heading.group(2).strip()))
    flush()
    return sections


class _HtmlText(HTMLParser):
    """Visible text of an HTML page, split at h1-h6; scripts and styles dropped."""

    HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
    BLOCKS = {"p", "div", "li", "br", "tr", "section", "article", "pre", "blockquote"}
    HIDDEN = {"script", "style", "template", "noscript", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self.trail: list[tuple[int, str]] = []
        self.text: list[str] = []
        self.heading: list[str] | None = None
        self.level = 0
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.HEADINGS:
            self.flush()
            self.heading, self.level = [], self.HEADINGS[tag]
        elif tag in self.BLOCKS:
            self.text.append("\n\n" if tag != "br" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.HEADINGS and self.heading is not None:
            title = " ".join("".join(self.heading).split())
            while self.trail and self.trail[-1][0] >= self.level:
                self.trail.pop()
            if title:
                self.trail.append((self.level, title))
            self.heading = None
        elif tag in self.BLOCKS:
            self.text.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        (self.heading if self.heading is not None else self.text).append(data)

    def flush(self) -> None:
        body = re.sub(r"\n\s*\n\s*", "\n\n", "".join(self.text)).strip()
        body = re.sub(r"[ \t]+", " ", body)
        if body:
            self.sections.append(Section(tuple(title for _, title in self.trail), body))
        self.text = []


def _html_sections(text: str) -> list[Section]:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    parser.flush()
    return parser.sections


def _pdf_sections(path: Path, data: bytes) -> list[Section]:
    from io import BytesIO

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as err:
        raise DocumentError(f"not a readable PDF ({err})") from None
    sections = [
        Section((f"page {number}",), text.strip())
        for number, text in enumerate(pages, start=1)
        if text.strip()
    ]
    if not sections:
        raise DocumentError("the PDF has no text layer (scanned pages are not supported)")
    return sections


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def chunk_sections(
    sections: list[Section], max_tokens: int, count: Callable[[str], int]
) -> list[Chunk]:
    """Pack each section's paragraphs into chunks of at most `max_tokens` (by `count`).

    A paragraph too long for one chunk is split at sentences, and a sentence too long at
    words. Chunks never cross a section, so each has one heading trail.
    """
    chunks: list[Chunk] = []
    for section in sections:
        heading = " > ".join(section.trail)
        for text in _pack(_pieces(section.text, max_tokens, count), max_tokens, count):
            chunks.append(Chunk(text=text, heading=heading, position=len(chunks)))
    return chunks


def _pieces(text: str, max_tokens: int, count: Callable[[str], int]) -> Iterator[str]:
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if count(paragraph) <= max_tokens:
            yield paragraph
            continue
        for sentence in _SENTENCE.split(paragraph):
            if count(sentence) <= max_tokens:
                yield sentence
                continue
            words = sentence.split()
            step = max(1, max_tokens // 2)
            for start in range(0, len(words), step):
                yield " ".join(words[start : start + step])


def _pack(pieces: Iterator[str], max_tokens: int, count: Callable[[str], int]) -> Iterator[str]:
    current: list[str] = []
    used = 0
    for piece in pieces:
        size = count(piece)
        if current and used + size > max_tokens:
            yield "\n\n".join(current)
            current, used = [], 0
        current.append(piece)
        used += size
    if current:
        yield "\n\n".join(current)
