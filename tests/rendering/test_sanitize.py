import pytest

from bulk_email.rendering import sanitize_html


@pytest.mark.parametrize(
    "attack, forbidden",
    [
        ("<script>alert(1)</script><p>x</p>", "alert"),
        ('<img src="a.png" onerror="alert(1)">', "onerror"),
        ('<a href="javascript:alert(1)">x</a>', "javascript"),
        ('<a href="JaVaScRiPt:alert(1)">x</a>', "alert"),
        ('<p style="width: expression(alert(1)); color: red">x</p>', "expression"),
        ('<p style="background: url(javascript:alert(1))">x</p>', "javascript"),
        ('<div onclick="steal()">x</div>', "steal"),
        ('<iframe src="https://evil.example"></iframe>', "iframe"),
        ("<style>p { color: red }</style>", "color"),
        ('<form action="https://evil.example"><input name="p"></form>', "input"),
    ],
)
def test_the_sanitizer_strips_what_runs_code(attack, forbidden):
    assert forbidden.lower() not in sanitize_html(attack).lower()


def test_the_sanitizer_keeps_what_email_needs():
    markup = (
        '<table width="100%" cellpadding="4"><tr><td style="color: #333; padding: 4px" '
        'align="center"><img src="https://example.org/a.png" alt="A" width="20">'
        '<a href="https://example.org/x">link</a> <a href="mailto:t@example.org">mail</a>'
        "</td></tr></table>"
    )
    cleaned = sanitize_html(markup)
    for kept in (
        "<table",
        'cellpadding="4"',
        "color: #333",
        "<img",
        'href="https://example.org/x"',
    ):
        assert kept in cleaned
    assert 'href="mailto:t@example.org"' in cleaned
