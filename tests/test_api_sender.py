"""Which template and which From address a course's sends use: per course, else per
organization, else the site's; staff choose among the allowed From addresses only."""

import pytest
from django.urls import reverse

from bulk_email import api, pipeline
from bulk_email.exceptions import InvalidEmailError
from bulk_email.models import CourseEmail, CourseEmailTemplate, EmailTask
from lms_stub.models import CourseAccessRole
from tests.factories import enroll, give_role, make_sending_course, make_user, run_fan_out, staff
from tests.rendering.mail import parse

pytestmark = pytest.mark.django_db

COURSE_FROM = ["Physics 101 <physics101@mitx.example>", "MITx <news@mitx.example>"]


@pytest.fixture
def course(settings):
    course = make_sending_course(org="MITx")
    settings.BULK_EMAIL = {
        **settings.BULK_EMAIL,
        "TEMPLATE_BY_ORG": {"MITx": "mitx-branded"},
        "FROM_ADDRESSES_BY_ORG": {"MITx": ["MITx <news@mitx.example>"]},
        "FROM_ADDRESSES_BY_COURSE": {course.id: COURSE_FROM},
    }
    CourseEmailTemplate.objects.create(
        name="mitx-branded",
        html_template="<html><body><p>MITX BRAND</p>{{message_body}}</body></html>",
        plain_template="MITX BRAND\n{{message_body}}",
    )
    return course


@pytest.fixture
def instructor(course):
    user = make_user("prof")
    give_role(user, course, CourseAccessRole.INSTRUCTOR)
    return user


def test_a_courses_entry_wins_over_its_organizations_and_the_sites(course, settings):
    options = api.sender_options(course=staff(course.id, make_admin(course)).course)
    assert (options.template_name, options.from_addresses) == ("mitx-branded", tuple(COURSE_FROM))
    other = make_sending_course(org="HarvardX")
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "DEFAULT_FROM_EMAIL": None}
    settings.DEFAULT_FROM_EMAIL = "site@lms.example"
    options = api.sender_options(course=staff(other.id, make_admin(other)).course)
    assert (options.template_name, options.from_addresses) == ("", ("site@lms.example",))


def make_admin(course):
    user = make_user()
    give_role(user, course, CourseAccessRole.INSTRUCTOR)
    return user


def send(course, instructor, **fields):
    return api.send_email(
        access=staff(course.id, instructor), subject="S", html="<p>Body</p>",
        targets=["learners"], **fields,
    )  # fmt: skip


def test_the_chosen_from_and_the_courses_template_are_stored(course, instructor):
    task = send(course, instructor, from_addr=COURSE_FROM[1])
    assert (task.email.from_addr, task.email.template_name) == (COURSE_FROM[1], "mitx-branded")
    assert send(course, instructor).email.from_addr == COURSE_FROM[0]  # the default: the first


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "address",
    ["someone@else.example", "news@mitx.example", "MITx <news@mitx.example>\r\nBcc: x@y.z"],
)
def test_an_address_the_operator_did_not_allow_is_refused_and_nothing_saved(
    course, instructor, address
):
    with pytest.raises(InvalidEmailError, match="This course sends from") as refused:
        send(course, instructor, from_addr=address)
    assert refused.value.field == "from_addr" and not CourseEmail.objects.exists()


def test_the_mail_leaves_from_the_chosen_address_in_the_courses_template(
    course, instructor, smtp_settings, smtp_sink
):
    learner = make_user()
    enroll(learner, course)
    task = send(course, instructor, from_addr=COURSE_FROM[1])
    EmailTask.objects.filter(pk=task.pk).update(state=EmailTask.PENDING)  # as the enqueue does
    for batch_id in run_fan_out(task):
        pipeline.send_batch(batch_id=batch_id)
    task.refresh_from_db()
    assert (task.state, task.total, task.error) == ("SUCCESS", 1, "")
    message = parse(smtp_sink.messages[0].data)
    sender = message["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("MITx", "news@mitx.example")
    assert smtp_sink.messages[0].mail_from == "news@mitx.example"
    assert "MITX BRAND" in message.get_body(("plain",)).get_content()


def test_the_tab_offers_the_allowed_addresses_and_names_the_template(client, course, instructor):
    client.force_login(instructor)
    page = client.get(reverse("instructor_dashboard", args=[course.id]), {"tab": "email"}).text
    assert '<select name="from_addr" id="bulk-email-from_addr"' in page
    assert "&lt;physics101@mitx.example&gt;</option>" in page and "Template: mitx-branded" in page
    response = client.post(
        reverse("bulk_email:tab_emails", args=[course.id]),
        {
            "subject": "S",
            "message": "<p>B</p>",
            "targets": ["myself"],
            "from_addr": "x@evil.example",
        },
        content_type="application/json",
    )
    assert response.status_code == 400 and response.json()["field"] == "from_addr"
