import re
from email import policy
from email.parser import BytesParser

import dkim
import pytest

from bulk_email import rendering
from bulk_email.exceptions import InvalidEmailError
from bulk_email.models import CourseEmail, CourseEmailTemplate
from bulk_email.rendering import (
    Recipient,
    get_prepared_message,
    refuse_header_injection,
    render_message,
    sanitize_html,
)
from bulk_email.tokens import read_token
from tests import factories
from tests.messages import UNICODE_COURSE, EmailData, make_dkim_key, prepare

LEARNER = Recipient(user_id=12, email="ana@example.com", full_name="Ána <Ö'Brien> & 李")


def parse(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def rendered_mail(email=None, recipient=LEARNER):
    return parse(render_message(prepare(email), recipient).as_bytes())


def parts(message) -> dict[str, str]:
    """Decoded parts by type; line ends as a mail client shows them (the wire has CRLF)."""
    return {
        part.get_content_type(): part.get_content().replace("\r\n", "\n")
        for part in message.iter_parts()
    }


# --- Sanitizing ---------------------------------------------------------------------------------


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


# --- Header safety ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["subject", "from_addr", "from_name"])
@pytest.mark.parametrize("injection", ["Hi\r\nBcc: victim@example.com", "Hi\nX: y", "Hi\rX"])
def test_header_injection_is_refused_naming_the_field(field, injection):
    with pytest.raises(InvalidEmailError) as caught:
        refuse_header_injection(**{field: injection})
    assert caught.value.field == field


def test_a_subject_with_a_newline_never_becomes_a_message():
    with pytest.raises(InvalidEmailError):
        prepare(EmailData(subject="Hello\r\nBcc: all@example.com"))


def test_a_learner_name_with_a_newline_stays_in_its_header():
    learner = Recipient(5, "x@example.com", "Eve\r\nBcc: victim@example.com")
    raw = render_message(prepare(), learner).as_bytes()
    assert b"\r\nBcc:" not in raw
    assert parse(raw)["Bcc"] is None


# --- The message a server receives --------------------------------------------------------------


def test_the_message_is_multipart_alternative_with_text_then_html():
    message = rendered_mail()
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_css_is_inlined_and_no_style_block_is_left():
    html = parts(rendered_mail())["text/html"]
    assert "<style" not in html
    assert re.search(r'<body[^>]*style="[^"]*background-color:#f2f2f2', html)


def test_keywords_are_filled_escaped_in_html_and_raw_in_text():
    message = rendered_mail()
    body = parts(message)
    assert "Hello Ána &lt;Ö'Brien&gt; &amp; 李" in body["text/html"] or (
        "Hello Ána &lt;Ö&#x27;Brien&gt; &amp; 李" in body["text/html"]
    )
    assert "Hello Ána <Ö'Brien> & 李" in body["text/plain"]
    for text in body.values():
        assert "Your id is 12." in text
        assert "ends on June 30, 2026" in text
        assert "%%" not in text
    assert "Physique générale — 物理 ends" in body["text/plain"]


def test_the_subject_is_personal_and_round_trips_unicode():
    message = rendered_mail()
    assert message["Subject"] == "Bienvenue, Ána <Ö'Brien> & 李 — Physique générale — 物理"


def test_the_from_display_name_is_the_course_staff_in_unicode():
    sender = rendered_mail()["From"].addresses[0]
    assert sender.display_name == "Physique générale — 物理 Course Staff"
    assert sender.addr_spec == "no-reply@lms.example.com"


def test_the_from_address_of_the_email_wins(settings):
    message = rendered_mail(EmailData(from_addr="physics@epfl.example"))
    assert message["From"].addresses[0].addr_spec == "physics@epfl.example"


def test_the_to_header_has_the_learners_full_name():
    recipient = rendered_mail()["To"].addresses[0]
    assert (recipient.display_name, recipient.addr_spec) == (LEARNER.full_name, LEARNER.email)


def test_every_header_line_is_ascii_and_short():
    raw = render_message(prepare(), LEARNER).as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_bulk_headers_are_present():
    message = rendered_mail()
    assert message["Precedence"] == "bulk"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Date"].datetime is not None
    assert "<EPFL.Phys101.2026.lms.example.com>" in message["List-Id"]
    assert "Physique générale — 物理" in str(message["List-Id"])


def test_the_date_header_is_the_time_of_rendering(monkeypatch):
    clock = iter([1_800_000_000.2, 1_800_000_000.9, 1_800_000_061.5])
    monkeypatch.setattr(rendering.time, "time", lambda: next(clock))
    dates = [rendering.date_header_now() for _ in range(3)]
    assert dates[0] == dates[1] == "Fri, 15 Jan 2027 08:00:00 GMT"
    assert dates[2] == "Fri, 15 Jan 2027 08:01:01 GMT"


@pytest.mark.parametrize(
    ("data", "stuffed"),
    [
        (b"no dots\r\nat line starts.\r\n", b"no dots\r\nat line starts.\r\n"),
        (b".first\r\nx\r\n.\r\n", b"..first\r\nx\r\n..\r\n"),
        (b"a\r\n..b\r\n", b"a\r\n...b\r\n"),
        (b"a\rb\r\n.c\n.d", b"a\rb\r\n..c\n..d"),
    ],
)
def test_dot_stuffing_doubles_only_leading_dots(data, stuffed):
    assert rendering.dot_stuffed(data) == stuffed


def test_the_stuffed_bytes_are_the_message_dot_stuffed():
    dotted = EmailData(html_message="<p>" + "a" * 75 + ".b</p>\n<p>.c</p>", text_message=".t")
    recipient = Recipient(7, "l@example.com", "." + "ü" * 30 + ".name")
    message = render_message(prepare(dotted), recipient)
    stuffed = message.as_stuffed_bytes()
    assert stuffed == rendering.dot_stuffed(message.as_bytes()) != message.as_bytes()


def test_list_unsubscribe_has_the_one_click_url_and_a_mailto(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "SITE_URL": "https://lms.example.com"}
    message = rendered_mail()
    urls = re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"]))
    assert urls[0].startswith("https://lms.example.com/email/one-click/")
    assert urls[1].startswith("mailto:no-reply@lms.example.com?subject=unsubscribe")
    token = urls[0].rstrip("/").rsplit("/", 1)[1]
    assert read_token(token, course_id=UNICODE_COURSE.course_id).user_id == LEARNER.user_id


def test_the_mailto_can_be_set_or_left_out(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "UNSUBSCRIBE_MAILTO": "unsub@lists.example"}
    assert "mailto:unsub@lists.example?" in str(rendered_mail()["List-Unsubscribe"])
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "UNSUBSCRIBE_MAILTO": ""}
    assert "mailto" not in str(rendered_mail()["List-Unsubscribe"])


def test_message_ids_are_unique_per_unsaved_message():
    prepared = prepare(EmailData(pk=None))
    ids = {render_message(prepared, LEARNER).message_id for _ in range(50)}
    assert len(ids) == 50
    assert all(re.match(r"^<[^@<>]+@lms\.example\.com>$", i) for i in ids)


def test_a_saved_email_gives_each_recipient_one_stable_message_id():
    """A copy re-sent after a crash carries the same Message-ID as the first one."""
    prepared = prepare(EmailData(pk=42))
    other = Recipient(user_id=LEARNER.user_id + 1, email="b@example.com", full_name="B")
    first, again = (render_message(prepared, LEARNER).message_id for _ in range(2))
    assert first == again != render_message(prepared, other).message_id
    assert render_message(prepare(EmailData(pk=43)), LEARNER).message_id != first


def test_the_footer_says_why_and_how_to_leave_in_both_parts():
    body = parts(rendered_mail())
    for text in body.values():
        assert "Physique générale — 物理" in text
        assert "You are receiving this email because" in text
        assert "https://lms.example.com/dashboard/#email-settings" in text
        assert "EPFL, Station 1, 1015 Lausanne, Switzerland" in text
        assert "/email/unsubscribe/" in text
    link = re.search(r'href="([^"]*/email/unsubscribe/[^"]+)"', body["text/html"]).group(1)
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert read_token(token).user_id == LEARNER.user_id


def test_the_postal_address_setting_fills_in_for_courses_without_one(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "POSTAL_ADDRESS": "1 Fallback Road"}
    course = rendering.CourseInfo("course-v1:X+Y+Z", "Plain", "X", None, "")
    html = parts(parse(render_message(prepare(course=course), LEARNER).as_bytes()))["text/html"]
    assert "1 Fallback Road" in html


def test_the_text_part_is_the_staff_text_when_given():
    body = parts(rendered_mail(EmailData(text_message="Plain words for %%USER_FULLNAME%%.")))
    assert body["text/plain"].startswith("Plain words for Ána <Ö'Brien> & 李.")


def test_a_non_ascii_address_needs_smtputf8_and_an_idn_domain_is_punycoded():
    prepared = prepare()
    assert render_message(prepared, Recipient(1, "jöse@example.com")).needs_smtputf8
    idn = render_message(prepared, Recipient(1, "ana@bücher.example"))
    assert idn.to_addr == "ana@xn--bcher-kva.example"
    assert not idn.needs_smtputf8


def test_a_malformed_address_is_refused():
    with pytest.raises(InvalidEmailError):
        render_message(prepare(), Recipient(1, "not-an-address"))


def test_the_email_message_form_carries_the_same_headers():
    message = render_message(prepare(), LEARNER).as_email_message().message()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "one-click" in message["List-Unsubscribe"]


# --- DKIM ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dkim_key():
    return make_dkim_key()


def test_a_dkim_signature_verifies(settings, dkim_key):
    private_pem, dns_record = dkim_key
    settings.BULK_EMAIL = {
        **settings.BULK_EMAIL,
        "DKIM": {"domain": "lms.example.com", "selector": "bulk", "private_key": private_pem},
    }
    raw = render_message(prepare(), LEARNER).as_bytes()
    assert raw.startswith(b"DKIM-Signature:")

    def dns(name, timeout=5):
        assert name == b"bulk._domainkey.lms.example.com."
        return dns_record

    assert dkim.verify(raw, dnsfunc=dns)
    signed = re.search(rb"h=([^;]+);", raw.replace(b"\r\n ", b"")).group(1).decode().lower()
    for header in ("from", "subject", "list-unsubscribe", "list-unsubscribe-post"):
        assert header in signed.replace(" ", "").split(":")
    one_click = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    tampered = raw.replace(one_click, b"List-Unsubscribe-Post: x")
    assert not dkim.verify(tampered, dnsfunc=dns)


# --- Templates and the per-process cache (database) ---------------------------------------------


@pytest.mark.django_db
def test_a_named_course_template_wraps_the_message():
    CourseEmailTemplate.objects.create(
        name="branded",
        html_template="<html><head><style>.brand{color:#123456}</style></head><body>"
        '<div class="brand">BRAND</div>{{message_body}}</body></html>',
        plain_template="BRAND\n{{message_body}}",
    )
    course = factories.make_course(display_name="Templated")
    email = CourseEmail.objects.create(
        course_id=course.id, subject="S", html_message="<p>Body</p>", template_name="branded"
    )
    body = parts(parse(render_message(get_prepared_message(email), LEARNER).as_bytes()))
    assert '<div class="brand" style="color:#123456">BRAND</div>' in body["text/html"]
    assert body["text/plain"].startswith("BRAND\nBody")


@pytest.mark.django_db
def test_the_prepared_message_is_cached_by_email_id_and_modified():
    rendering.clear_prepared_cache()
    course = factories.make_course()
    email = CourseEmail.objects.create(course_id=course.id, subject="S", html_message="<p>A</p>")
    first = get_prepared_message(email)
    assert get_prepared_message(CourseEmail.objects.get(pk=email.pk)) is first
    email.html_message = "<p>B</p>"
    email.save()
    assert get_prepared_message(email) is not first
    assert "B" in get_prepared_message(email).html.parts[0]


@pytest.mark.parametrize(
    "name",
    [
        "Zoë Ångström-Łukasz",
        'Jean-Éric O\'Brien (TA) "Ji"',
        "Ünïcødé Lëärnér " * 5 + "Øyvind",
        "李小龍 王菲 周杰倫 鄧麗君 張學友 梅艷芳 劉德華",
        "Plain Ascii Name, With Comma",
        "Émoji 🎓 learner",
    ],
)
def test_unicode_names_and_subjects_round_trip_through_the_headers(name):
    email = EmailData(subject="%%USER_FULLNAME%% — a long subject about Physique générale " * 2)
    raw = render_message(prepare(email), Recipient(3, "x@example.com", name)).as_bytes()
    message = parse(raw)
    # CPython keeps the folding space between two encoded words of a display name, which RFC
    # 2047 says to drop (its own round trip does the same), so spaces are not compared there.
    shown = message["To"].addresses[0].display_name
    assert shown.replace(" ", "") == name.replace(" ", "")
    assert message["Subject"] == email.subject.replace("%%USER_FULLNAME%%", name).strip()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    # Every line within RFC 5322's 78 columns except List-Unsubscribe's (URLs cannot fold).
    long_lines = [line for line in head.split(b"\r\n") if len(line) > 78]
    assert all(line.startswith((b"List-Unsubscribe: <http", b" <mailto:")) for line in long_lines)
