"""Bad input the Email tab and the messages must survive (issue 9's list, the pieces not
already proven in test_api, test_email_tab, test_views_unsubscribe and the rendering tests):
each gets a clear message, a 4xx over HTTP, and changes nothing."""

import json
from email import policy
from email.parser import BytesParser

import pytest

from bulk_email.models import CourseEmail, EmailTask
from bulk_email.rendering import Recipient, render_message
from lms_stub.models import CourseAccessRole
from tests.factories import give_role, make_sending_course, make_user
from tests.messages import UNICODE_COURSE, EmailData, prepare

pytestmark = [pytest.mark.django_db, pytest.mark.bad_input]


def test_a_ten_megabyte_message_is_refused_with_its_field(client):
    course = make_sending_course()
    instructor = make_user("prof")
    give_role(instructor, course, CourseAccessRole.INSTRUCTOR)
    client.force_login(instructor)
    body = {"subject": "Big", "message": "<p>" + "x" * 10_000_000 + "</p>", "targets": ["myself"]}
    response = client.post(
        f"/email/courses/{course.id}/api/emails/", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["field"] == "message" and "too large" in response.json()["message"]
    assert not CourseEmail.objects.exists() and not EmailTask.objects.exists()


ARABIC_PHYSICS = "\u0641\u064a\u0632\u064a\u0627\u0621"
HOSTILE_TITLE = f'Physique "générale" <b>&amp;</b> \u202e{ARABIC_PHYSICS}\u202c — 物理'


def test_a_hostile_course_title_stays_text_in_headers_and_footer():
    course = UNICODE_COURSE.__class__(**{**UNICODE_COURSE.__dict__, "display_name": HOSTILE_TITLE})
    prepared = prepare(EmailData(subject="Week 1 of %%COURSE_DISPLAY_NAME%%"), course)
    name = 'Zoë "<script>" O\'Brien \u202eRTL'
    raw = render_message(prepared, Recipient(7, "zoe@example.com", name)).as_bytes()
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert not message.defects
    assert message["Subject"] == f"Week 1 of {HOSTILE_TITLE}"
    # Python's parser puts a space between some encoded words: compare without spaces.
    spaceless = lambda text: text.replace(" ", "")  # noqa: E731
    sender = message["From"].addresses[0].display_name
    assert spaceless(sender) == spaceless(f"{HOSTILE_TITLE} Course Staff")
    assert spaceless(message["To"].addresses[0].display_name) == spaceless(name)
    html = message.get_body(("html",)).get_content()
    assert "<b>&amp;</b>" not in html and "&lt;b&gt;" in html and "<script>" not in html
    text = message.get_body(("plain",)).get_content()
    assert HOSTILE_TITLE in text
