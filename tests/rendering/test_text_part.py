"""The text/plain part of a rich message reads as a plain-text email, not as Markdown."""

import re

from tests.messages import EmailData
from tests.rendering.mail import parts, rendered_mail

RICH = (
    "<h1>Week 1 — 欢迎</h1>"
    "<p>Hello <strong>Zoë</strong>, welcome to <em>Physics</em> and <b>labs</b>.</p>"
    "<h2>What to read</h2>"
    '<p>Read the <a href="https://example.org/syllabus">Syllabus</a>, '
    '<a href="https://example.org/faq">https://example.org/faq</a> and '
    '<a href="mailto:help@example.org">write to us</a>.</p>'
    "<p><br></p><p>&nbsp;</p><p></p><div><br></div>"
    "<p>2026. A good year.</p>"
)


def text_part() -> str:
    return parts(rendered_mail(EmailData(html_message=RICH)))["text/plain"]


def test_the_text_part_has_no_markdown_markers():
    text = text_part()
    assert "Hello Zoë, welcome to Physics and labs." in text
    for marker in ("**", "__", "_Physics_", "](", "\\"):
        assert marker not in text, marker
    assert not re.search(r"^#", text, re.MULTILINE)


def test_headings_are_plain_lines():
    lines = text_part().splitlines()
    assert "Week 1 — 欢迎" in lines
    assert "What to read" in lines


def test_links_read_as_text_then_url():
    text = text_part()
    assert "Read the Syllabus (https://example.org/syllabus)," in text
    assert " https://example.org/faq and" in text
    assert "write to us (help@example.org)." in text


def test_at_most_one_blank_line_in_a_row():
    text = text_part()
    assert not re.search(r"\n[ \t\u00a0]*\n[ \t\u00a0]*\n", text)
    assert "2026. A good year." in text
