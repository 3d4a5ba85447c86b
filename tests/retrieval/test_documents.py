"""Reading and chunking documents: headings become trails, budgets hold, bad files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.documents import DocumentError, chunk_sections, read_sections
from activities.retrieval import estimate_tokens


def minimal_pdf(pages: list[str]) -> bytes:
    """A valid PDF with one line of Helvetica text per page (pypdf reads it back)."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def test_markdown_headings_become_trails(tmp_path: Path) -> None:
    doc = tmp_path / "guide.md"
    doc.write_text(
        "Intro line.\n\n# Refunds\n\nThirty days.\n\n## Timing\n\nFive business days.\n\n"
        "```\n# not a heading inside code\n```\n\n# Shipping\n\nThree to seven days.\n"
    )
    sections = read_sections(doc, 10_000)
    assert [(s.trail, s.text.splitlines()[0]) for s in sections] == [
        ((), "Intro line."),
        (("Refunds",), "Thirty days."),
        (("Refunds", "Timing"), "Five business days."),
        (("Shipping",), "Three to seven days."),
    ]
    assert "# not a heading inside code" in sections[2].text
    chunks = chunk_sections(sections, 200, estimate_tokens)
    assert [c.heading for c in chunks] == ["", "Refunds", "Refunds > Timing", "Shipping"]
    assert [c.position for c in chunks] == [0, 1, 2, 3]


def test_html_text_without_scripts(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>T</title><style>p{}</style></head><body><h1>Gift cards</h1>"
        "<p>Valid for <b>two years</b>.</p><script>alert('x')</script><h2>Lost codes</h2>"
        "<p>Resent to the buyer &amp; nobody else.</p></body></html>"
    )
    sections = read_sections(page, 10_000)
    assert [(s.trail, s.text) for s in sections] == [
        (("Gift cards",), "Valid for two years."),
        (("Gift cards", "Lost codes"), "Resent to the buyer & nobody else."),
    ]


def test_pdf_pages(tmp_path: Path) -> None:
    pdf = tmp_path / "policy.pdf"
    pdf.write_bytes(minimal_pdf(["Warranty lasts two years", "Repairs take ten days"]))
    sections = read_sections(pdf, 10_000)
    assert [(s.trail, s.text) for s in sections] == [
        (("page 1",), "Warranty lasts two years"),
        (("page 2",), "Repairs take ten days"),
    ]


def test_chunks_respect_the_token_budget() -> None:
    sentence = "The refund is issued within five business days of the return. "
    text = "\n\n".join(sentence * 6 for _ in range(10)) + "\n\n" + "word " * 900
    from activities.documents import Section

    chunks = chunk_sections([Section(("Long",), text)], 64, estimate_tokens)
    assert len(chunks) > 10
    assert all(estimate_tokens(c.text) <= 64 for c in chunks)
    # nothing is lost: every word of the input is in some chunk, in order
    assert " ".join(" ".join(c.text.split()) for c in chunks) == " ".join(text.split())


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary content"),
        ("latin1.md", "caf\xe9".encode("latin-1"), "not UTF-8 text"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "not a readable PDF"),
        ("blank.pdf", minimal_pdf([""]), "no text layer"),
        ("data.csv", b"a,b\n1,2\n", "unsupported file type"),
    ],
)
def test_unreadable_files_are_refused_with_a_reason(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DocumentError, match=reason):
        read_sections(path, 10_000)


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    huge = tmp_path / "huge.md"
    with huge.open("wb") as stream:  # sparse: 200 MB on paper, nothing on disk
        stream.truncate(200 * 1024 * 1024)
    with pytest.raises(DocumentError, match="209,715,200 bytes is over the 1,000-byte limit"):
        read_sections(huge, 1_000)
