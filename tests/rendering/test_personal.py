import re

import pytest

from bulk_email.rendering import Recipient, render_message
from bulk_email.rendering import personal as rendering
from bulk_email.tokens import BOUNCE, UNSUBSCRIBE, AddressToken, read_feedback_address, read_token
from tests.messages import UNICODE_COURSE, EmailData, prepare
from tests.rendering.mail import LEARNER, parse, rendered_mail


def test_the_subject_is_personal_and_round_trips_unicode():
    message = rendered_mail()
    assert message["Subject"] == "Bienvenue, Ána <Ö'Brien> & 李 — Physique générale — 物理"


def test_the_date_header_is_the_time_of_rendering(monkeypatch):
    clock = iter([1_800_000_000.2, 1_800_000_000.9, 1_800_000_061.5])
    monkeypatch.setattr(rendering.time, "time", lambda: next(clock))
    dates = [rendering.date_header_now() for _ in range(3)]
    assert dates[0] == dates[1] == "Fri, 15 Jan 2027 08:00:00 +0000"
    assert dates[2] == "Fri, 15 Jan 2027 08:01:01 +0000"


def test_the_date_header_on_the_wire_has_a_numeric_utc_zone():
    """RFC 5322 §4.3 lists "GMT" as an obsolete zone; "-0000" would mean "zone unknown"."""
    raw = render_message(prepare(), LEARNER).as_bytes()
    date_line = re.search(rb"^Date: (.*)\r$", raw, re.MULTILINE).group(1)
    assert re.fullmatch(
        rb"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000", date_line
    )


FEEDBACK = "feedback.lms.example.com"
TASK_ID = 4321


@pytest.fixture
def feedback_domain(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "FEEDBACK_DOMAIN": FEEDBACK}


def test_list_unsubscribe_has_the_one_click_url_and_a_signed_mailto(settings, feedback_domain):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "SITE_URL": "https://lms.example.com"}
    raw = render_message(prepare(), LEARNER, task_id=TASK_ID).as_bytes()
    folded = re.search(rb"^List-Unsubscribe: <(https://[^>]+)>,\r\n <(mailto:[^>]+)>\r$", raw,
                       re.MULTILINE)  # fmt: skip
    one_click, mailto = (part.decode() for part in folded.groups())
    assert one_click.startswith("https://lms.example.com/email/one-click/")
    token = one_click.rstrip("/").rsplit("/", 1)[1]
    assert read_token(token, course_id=UNICODE_COURSE.course_id).user_id == LEARNER.user_id
    address, _, query = mailto.removeprefix("mailto:").partition("?")
    assert query == "subject=unsubscribe"
    assert address.startswith("unsubscribe+") and address.endswith(f"@{FEEDBACK}")
    assert read_feedback_address(address) == AddressToken(UNSUBSCRIBE, LEARNER.user_id, TASK_ID)
    urls = re.findall(r"<([^>]+)>", str(parse(raw)["List-Unsubscribe"]))
    assert urls == [one_click, mailto]  # a mail client reads both back


def test_the_envelope_sender_is_a_signed_verp_address(feedback_domain):
    message = render_message(prepare(), LEARNER, task_id=TASK_ID)
    assert message.envelope_from.startswith("bounces+")
    expected = AddressToken(BOUNCE, LEARNER.user_id, TASK_ID)
    assert read_feedback_address(message.envelope_from) == expected
    assert message.from_addr == "no-reply@lms.example.com"  # the From header is unchanged


def test_without_a_feedback_domain_there_is_no_mailto_and_no_verp():
    message = render_message(prepare(), LEARNER, task_id=TASK_ID)
    assert b"mailto" not in message.as_bytes()
    assert message.envelope_from == message.from_addr == "no-reply@lms.example.com"


def test_a_preview_has_no_task_so_no_feedback_addresses(feedback_domain):
    message = render_message(prepare(), LEARNER)
    assert b"mailto" not in message.as_bytes() and FEEDBACK.encode() not in message.as_bytes()
    assert message.envelope_from == message.from_addr


def test_an_international_feedback_domain_goes_out_in_idna(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "FEEDBACK_DOMAIN": "rückmeldung.example"}
    message = render_message(prepare(), LEARNER, task_id=TASK_ID)
    assert message.envelope_from.endswith("@xn--rckmeldung-9db.example")
    assert message.as_bytes().split(b"\r\n\r\n", 1)[0].isascii()


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
