import re

from bulk_email.rendering import Recipient, render_message
from bulk_email.rendering import personal as rendering
from bulk_email.tokens import read_token
from tests.messages import UNICODE_COURSE, EmailData, prepare
from tests.rendering.mail import LEARNER, rendered_mail


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
