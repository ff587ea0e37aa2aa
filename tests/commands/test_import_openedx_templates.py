"""Templates exported from Open edX: imported, then a real send fills every placeholder as
Open edX does, per email once and per recipient in the personal step."""

import json
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from bulk_email import pipeline
from bulk_email.models import CourseEmail, CourseEmailTemplate
from bulk_email.tokens import read_token
from lms_stub.models import UserProfile
from tests.factories import make_task, run_fan_out
from tests.rendering.mail import parse, parts

pytestmark = pytest.mark.django_db

EXPORT = Path(__file__).resolve().parents[1] / "fixtures" / "openedx_course_email_templates.json"


def test_an_export_is_imported_with_the_unnamed_default_named(capsys):
    call_command("import_openedx_templates", str(EXPORT))
    templates = CourseEmailTemplate.objects.order_by("name")
    assert [(t.name, t.openedx_placeholders) for t in templates] == [
        ("branded", True),
        ("openedx-default", True),
    ]
    assert "Imported 'openedx-default'" in capsys.readouterr().out
    call_command("import_openedx_templates", str(EXPORT))  # again: replaced, not doubled
    assert CourseEmailTemplate.objects.count() == 2


@pytest.mark.parametrize(
    ("html", "says"),
    [
        ("<p>{course_tittle}</p>{{message_body}}", "Unknown placeholder {course_tittle}"),
        ("<p>{name.__class__}</p>{{message_body}}", "Unknown placeholder {name.__class__}"),
        ("<p>{name!r}</p>{{message_body}}", "Unknown placeholder {name}"),
        ("<style>p { color: red }</style>{{message_body}}", "literal braces must be doubled"),
        ("<p>{course_title}</p>", "exactly once"),
    ],
)
def test_a_template_that_cannot_be_filled_is_refused_and_nothing_is_imported(tmp_path, html, says):
    good = json.loads(EXPORT.read_text())[1]
    bad = {**good, "fields": {**good["fields"], "name": "bad", "html_template": html}}
    export = tmp_path / "export.json"
    export.write_text(json.dumps([good, bad]))
    with pytest.raises(CommandError, match=re.escape(says)):
        call_command("import_openedx_templates", str(export))
    assert not CourseEmailTemplate.objects.exists()


@pytest.mark.parametrize("content", ["not json", "{}", '[{"model": "auth.user"}]'])
def test_a_file_that_is_not_an_export_is_refused(tmp_path, content):
    export = tmp_path / "export.json"
    export.write_text(content)
    with pytest.raises(CommandError):
        call_command("import_openedx_templates", str(export))


def test_a_send_with_an_imported_template_fills_every_placeholder(
    settings, smtp_settings, smtp_sink, course_with_learners
):
    settings.PLATFORM_NAME = "Acme <Learning> & Co"
    call_command("import_openedx_templates", str(EXPORT))
    course, instructor, learners = course_with_learners
    course.display_name = "Física & <Química>"
    course.save()
    UserProfile.objects.filter(user=learners[0]).update(name="Zoë <O'Brien>")
    task = make_task(course, instructor)
    CourseEmail.objects.filter(pk=task.email_id).update(template_name="openedx-default")
    for batch_id in run_fan_out(task):
        pipeline.send_batch(batch_id=batch_id)

    mine = next(m for m in smtp_sink.messages if m.rcpt_tos == [learners[0].email])
    body = parts(parse(mine.data))
    html, text = body["text/html"], body["text/plain"]
    assert "<title>Update from Física &amp; &lt;Química&gt;</title>" in html
    assert "Dear Zoë &lt;O&#x27;Brien&gt; (learner0@example.com, learner #" in html
    assert f"learner #{learners[0].pk})" in html
    assert "Acme &lt;Learning&gt; &amp; Co" in html and "Acme <Learning> & Co" in text
    assert re.search(r'class="brand" style="color:#00a0e3; ?font-weight:bold', html)
    assert "Hello" in html and "{" not in html.split("<body", 1)[1]
    assert "You are receiving this email at address learner0@example.com" in text
    assert f"/dashboard/#course-{course.id}" in text
    token = re.search(r"/email/unsubscribe/([^/]+)/", text).group(1)
    assert read_token(token).user_id == learners[0].pk
    others = [m for m in smtp_sink.messages if m is not mine]
    assert all(learners[0].email not in parts(parse(m.data))["text/plain"] for m in others)
