"""A send to learners of three languages, through a real celery worker, Redis, PostgreSQL and
the SMTP sink: each message's footer is in its learner's language (read from the bytes the
server received), and the email was prepared once per language, not once per recipient."""

import re

import pytest

from bulk_email.models import EmailTask
from lms_stub.models import UserProfile
from tests.live_pipeline import expected_learner_addresses, seeded_course, send_now

pytestmark = pytest.mark.integration

FOOTERS = {
    "en": "You are receiving this email because you are enrolled in",
    "fr": "Vous recevez cet e-mail parce que vous êtes inscrit(e) au cours",
    "ar": "تصلك هذه الرسالة لأنك مسجَّل في المقرر",
}
UNSUBSCRIBE = {
    "en": "Unsubscribe from",
    "fr": "Se désabonner des e-mails de",
    "ar": "إلغاء الاشتراك",
}
PREPARED = re.compile(r"Prepared email (\d+) in language (\w+)\.")


def give_languages(addresses: set[str]) -> dict[str, str]:
    """A quarter of the learners prefer French, a quarter Arabic, a quarter English; the
    rest chose nothing (the course's language, none here, then the site's: English too)."""
    chosen = {address: ["fr", "ar", "en", ""][n % 4] for n, address in enumerate(sorted(addresses))}
    for address, language in chosen.items():
        UserProfile.objects.filter(user__email=address).update(language=language)
    return {address: language or "en" for address, language in chosen.items()}


def footer_of(message, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    return part.get_content()


def test_each_footer_speaks_its_learners_language_and_three_preparations(live_pipeline, smtp_sink):
    course_id, instructor = seeded_course(60, course_id="course-v1:LangX+L1+2026")
    expected = give_languages(expected_learner_addresses(course_id))
    assert set(expected.values()) == {"en", "fr", "ar"}
    # One pool process: the prepared messages are cached per process, and the count is of one.
    worker = live_pipeline.start_worker(concurrency=1)
    task = send_now(course_id, instructor, ["learners"])
    live_pipeline.wait_for_state(task, EmailTask.SUCCESS, timeout=120)

    received = {m.rcpt_tos[0]: m.parsed() for m in smtp_sink.messages}
    assert set(received) == set(expected)
    for address, message in received.items():
        language = expected[address]
        html, text = footer_of(message, "html"), footer_of(message, "plain")
        direction = "rtl" if language == "ar" else "ltr"
        assert f'lang="{language}" dir="{direction}"' in html, address
        assert FOOTERS[language] in html and FOOTERS[language] in text, address
        assert UNSUBSCRIBE[language] in text, address
        others = set(FOOTERS) - {language}
        assert not any(FOOTERS[other] in html + text for other in others), address

    log = worker.log_path.read_text(errors="replace")
    prepared = [lang for email_id, lang in PREPARED.findall(log) if int(email_id) == task.email_id]
    assert sorted(prepared) == ["ar", "en", "fr"]
