import pytest

from bulk_email.exceptions import InvalidEmailError
from bulk_email.rendering import sanitize_html
from bulk_email.rendering.sanitize import nesting_depth


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


@pytest.mark.parametrize(
    "style",
    [
        r"width:e\78pression(alert(1))",
        "width:expr/**/ession(alert(1))",
        r"background:url(java\73 cript:alert(1))",
        r"-moz-b\69nding:url(https://evil.example/x.xml#x)",
        "behavior:url(https://evil.example/x.htc)",
        "background-image:url(https://evil.example/track.png)",
        "color:red;x:1;width:&#101;xpression(alert(1))",
        "background:image-set(https://evil.example/t.png 1x)",
    ],
)
def test_css_outside_the_allow_list_is_dropped_however_it_is_spelled(style):
    cleaned = sanitize_html(f"<p style='{style}; padding: 2px'>x</p>").lower()
    for forbidden in ("expr", "url", "binding", "behavior", "image", "\\", "/*"):
        assert forbidden not in cleaned
    assert "padding: 2px" in cleaned


def test_allowed_css_is_kept_as_written():
    cleaned = sanitize_html('<p style="color: rgb(1,2,3); font-family: Arial; margin: 0">x</p>')
    assert 'style="color: rgb(1,2,3); font-family: Arial; margin: 0"' in cleaned


def test_markup_nested_deeper_than_the_limit_is_refused_on_the_message(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "MAX_HTML_NESTING": 100}
    assert "x" in sanitize_html("<div>" * 100 + "x" + "</div>" * 100)
    with pytest.raises(InvalidEmailError) as caught:
        sanitize_html("<div>" * 101 + "x" + "</div>" * 101)
    assert caught.value.field == "message" and "100" in str(caught.value)


@pytest.mark.parametrize(
    "markup, depth",
    [
        ("<ul>" + "<li>item" * 500 + "</ul>", 2),  # unclosed siblings do not nest
        ("<p>a<br><img src=x.png><hr></p>", 1),  # void elements do not nest
        ("<div><b>x</b></div>" * 500, 2),
        ("<div><table></div>" * 60, 120),  # </div> does not reach through a table
        ("<div/>" * 120, 120),  # "/>" does not close a div in HTML
    ],
)
def test_the_depth_scan_never_counts_less_than_the_parser_nests(markup, depth):
    assert nesting_depth(markup, stop_above=1000) == depth


def test_the_depth_scan_stops_once_past_the_limit():
    assert nesting_depth("<div>" * 90_000, stop_above=100) == 101


def test_formatting_elements_the_parser_would_re_create_count_against_the_limits():
    # Each <b> closed by </div> is re-created, nested, before the next tag: 2,400 of them
    # (61 KB) made nh3 build 2.9 million elements in 17 s.
    recreated = "".join(f"<div><b class=c{n}></div>" for n in range(2400)) + "x"
    with pytest.raises(InvalidEmailError):
        sanitize_html(recreated)
    assert nesting_depth("<div><b class=c1></div>" * 50, stop_above=1000) >= 3
    assert nesting_depth("<div><b></div>" * 50, stop_above=1000) <= 5  # three identical, as HTML


def test_a_closed_formatting_element_is_forgotten_at_its_end_tag():
    assert nesting_depth("<p><b>bold</p></b>" * 200, stop_above=1000) <= 2
