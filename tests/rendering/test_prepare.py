import re

import pytest
from django.conf import settings
from django.core import checks
from django.test import override_settings

from bulk_email import rendering
from bulk_email.exceptions import EmailTemplateError
from bulk_email.lms import derived_anonymous_id
from bulk_email.models import CourseEmail, CourseEmailTemplate
from bulk_email.rendering import get_prepared_message, render_message
from bulk_email.tokens import read_token
from tests import factories
from tests.messages import EmailData, prepare
from tests.rendering.mail import LEARNER, parse, parts, rendered_mail


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
    anonymous = derived_anonymous_id("course-v1:EPFL+Phys101+2026", 12)
    assert re.fullmatch("[0-9a-f]{32}", anonymous)
    for text in body.values():
        assert f"Your id is {anonymous}." in text  # %%USER_ID%%: anonymous, as Open edX's
        assert "ends on June 30, 2026" in text
        assert "%%" not in text
    assert "Physique générale — 物理 ends" in body["text/plain"]


def test_the_from_display_name_is_the_course_staff_in_unicode():
    sender = rendered_mail()["From"].addresses[0]
    assert sender.display_name == "Physique générale — 物理 Course Staff"
    assert sender.addr_spec == "no-reply@lms.example.com"


def test_the_from_address_of_the_email_wins(settings):
    message = rendered_mail(EmailData(from_addr="physics@epfl.example"))
    assert message["From"].addresses[0].addr_spec == "physics@epfl.example"


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


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, value, shown",
    [
        ("POSTAL_ADDRESS", "9 New Road, Newtown", "9 New Road, Newtown"),
        ("DEFAULT_TEMPLATE_NAME", "branded", "BRAND"),  # a setting the old key left out
    ],
)
def test_changing_any_setting_prepares_the_message_anew(settings, name, value, shown):
    rendering.clear_prepared_cache()
    CourseEmailTemplate.objects.create(
        name="branded",
        html_template="<html><body>BRAND {{message_body}}</body></html>",
        plain_template="BRAND\n{{message_body}}",
    )
    course = factories.make_course(postal_address="")
    email = CourseEmail.objects.create(course_id=course.id, subject="S", html_message="<p>A</p>")
    first = get_prepared_message(email)
    with override_settings(BULK_EMAIL={**settings.BULK_EMAIL, name: value}):
        changed = get_prepared_message(email)
    assert changed is not first
    assert shown in "".join(changed.text.parts) and shown not in "".join(first.text.parts)
    assert get_prepared_message(email) is first  # the old settings again: the cached one


# --- The HTML part as a page: <html lang> and <title> (what a screen reader announces) ---------


def test_the_html_part_has_a_language_and_the_subject_as_title_filled_and_escaped():
    html = parts(rendered_mail())["text/html"]
    assert re.search(r'<html lang="en">', html)
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert title == (
        "Bienvenue, Ána &lt;Ö&#x27;Brien&gt; &amp; 李 — Physique générale — 物理"
    ) or title == ("Bienvenue, Ána &lt;Ö'Brien&gt; &amp; 李 — Physique générale — 物理")
    assert html.index("<title>") < html.index("<body")


def test_the_language_is_the_courses():
    from tests.messages import UNICODE_COURSE

    french = rendering.CourseInfo(**{**UNICODE_COURSE.__dict__, "language": 'fr" onload="x'})
    html = render_message(prepare(course=french), LEARNER).html
    assert '<html lang="fr&quot; onload=&quot;x">' in html


def test_a_hostile_subject_is_text_in_the_title():
    html = parts(rendered_mail(EmailData(subject="</title><script>alert(1)</script>")))["text/html"]
    assert "<title>&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;</title>" in html
    assert "<script" not in html


@pytest.mark.django_db
def test_a_templates_own_language_and_title_are_kept():
    CourseEmailTemplate.objects.create(
        name="own",
        html_template='<html lang="de"><head><title>Kurs</title></head><body>{{message_body}}'
        "</body></html>",
        plain_template="{{message_body}}",
    )
    course = factories.make_course(display_name="Eigen")
    email = CourseEmail.objects.create(
        course_id=course.id, subject="S", html_message="<p>Body</p>", template_name="own"
    )
    html = render_message(get_prepared_message(email), LEARNER).html
    assert (
        '<html lang="de">' in html and html.count("<title>") == 1 and "<title>Kurs</title>" in html
    )


@pytest.mark.django_db
def test_a_template_without_head_gets_one_with_the_title():
    CourseEmailTemplate.objects.create(
        name="bare",
        html_template="<html><body>{{message_body}}</body></html>",
        plain_template="{{message_body}}",
    )
    course = factories.make_course(display_name="Bare")
    email = CourseEmail.objects.create(
        course_id=course.id, subject="Plain subject", html_message="<p>B</p>", template_name="bare"
    )
    html = render_message(get_prepared_message(email), LEARNER).html
    assert '<html lang="en">' in html and "<title>Plain subject</title>" in html


@pytest.mark.django_db
def test_djangos_spelling_of_the_body_slot_wraps_the_message_too():
    CourseEmailTemplate.objects.create(
        name="spaced",
        html_template="<html><body><div>BRAND</div>{{ message_body }}</body></html>",
        plain_template="BRAND\n{{  message_body\t}}",
    )
    course = factories.make_course(display_name="Templated")
    email = CourseEmail.objects.create(
        course_id=course.id, subject="S", html_message="<p>Body</p>", template_name="spaced"
    )
    body = parts(parse(render_message(get_prepared_message(email), LEARNER).as_bytes()))
    assert "<p>Body</p>" in body["text/html"] and "message_body" not in body["text/html"]
    assert body["text/plain"].startswith("BRAND\nBody")


@pytest.mark.django_db
@pytest.mark.parametrize("html", ["<p>no slot</p>", "{{message_body}}{{ message_body }}"])
def test_a_template_row_saved_around_validation_is_refused_with_the_reason(html):
    CourseEmailTemplate.objects.create(
        name="broken", html_template=html, plain_template="{{message_body}}"
    )
    with pytest.raises(EmailTemplateError, match="HTML part of the CourseEmailTemplate 'broken'"):
        rendering.load_template("broken")


def template_files(tmp_path, html: str):
    """A project override of the template files: a templates/ directory searched first."""
    folder = tmp_path / "bulk_email"
    folder.mkdir()
    (folder / "email_template.html").write_text(html)
    (folder / "email_template.txt").write_text("{{ message_body }}\n")
    templates = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    return override_settings(TEMPLATES=templates)


def test_an_overriding_template_file_without_the_slot_is_a_check_error(tmp_path):
    with template_files(tmp_path, "<html><body>{{ body }}</body></html>"):
        errors = checks.run_checks(tags=["bulk_email"])
        assert [e.id for e in errors if e.id == "bulk_email.E015"] == ["bulk_email.E015"]
        with pytest.raises(EmailTemplateError, match="email template files"):
            rendering.file_template()


def test_an_overriding_template_file_with_djangos_spelling_is_used(tmp_path):
    with template_files(tmp_path, "<html><body><h1>OURS</h1>{{ message_body }}</body></html>"):
        assert not [e for e in checks.run_checks(tags=["bulk_email"]) if e.id == "bulk_email.E015"]
        assert "<h1>OURS</h1>" in rendering.file_template().html


@pytest.mark.django_db
def test_an_openedx_value_that_reads_like_the_body_slot_stays_a_value():
    CourseEmailTemplate.objects.create(
        name="oe",
        html_template="<html><body><h1>{course_title}</h1>{{message_body}}</body></html>",
        plain_template="{course_title}\n{{message_body}}",
        openedx_placeholders=True,
    )
    course = factories.make_course(display_name="{message_body} {{message_body}} {name}")
    email = CourseEmail.objects.create(
        course_id=course.id, subject="S", html_message="<p>Body</p>", template_name="oe"
    )
    body = parts(parse(render_message(get_prepared_message(email), LEARNER).as_bytes()))
    title = re.escape("<h1>{message_body} {{message_body}} {name}</h1>")
    assert re.search(title + r"\s*<p>Body</p>", body["text/html"])
    assert body["text/plain"].startswith("{message_body} {{message_body}} {name}\nBody")


@pytest.mark.django_db
def test_an_openedx_row_saved_around_validation_is_refused_when_prepared():
    CourseEmailTemplate.objects.create(
        name="oe",
        html_template="<p>{course_title.__class__}</p>{{message_body}}",
        plain_template="{{message_body}}",
        openedx_placeholders=True,
    )
    course = factories.make_course()
    email = CourseEmail.objects.create(
        course_id=course.id, subject="S", html_message="<p>Body</p>", template_name="oe"
    )
    with pytest.raises(EmailTemplateError, match="Unknown placeholder"):
        get_prepared_message(email)


def test_the_anonymous_id_is_per_course_stable_and_not_the_database_id():
    ids = {derived_anonymous_id(course, 12) for course in ("course-v1:A+B+C", "course-v1:X+Y+Z")}
    assert len(ids) == 2 and derived_anonymous_id("course-v1:A+B+C", 12) in ids
    assert derived_anonymous_id("course-v1:A+B+C", 12) != "12"
    prepared = prepare(EmailData(subject="No keyword", html_message="<p>None here</p>"))
    assert not prepared.uses_anonymous_id  # then no id is computed per recipient


# --- One preparation per (email, language) ------------------------------------------------------


@pytest.mark.django_db
def test_a_message_is_prepared_once_per_language_with_its_footer_in_it():
    from bulk_email import rendering
    from tests import factories

    course = factories.make_sending_course(display_name="Physique")
    email = factories.make_email(course.id)
    rendering.clear_prepared_cache()
    before = rendering.preparations.copy()
    prepared = {lang: rendering.get_prepared_message(email, lang) for lang in ("en", "fr", "ar")}
    for _ in range(3):  # asked again per batch: the cache answers
        for lang in ("en", "fr", "ar"):
            assert rendering.get_prepared_message(email, lang) is prepared[lang]
    assert rendering.preparations - before == {"en": 1, "fr": 1, "ar": 1}
    html = {lang: "".join(p.html.parts) for lang, p in prepared.items()}
    text = {lang: "".join(p.text.parts) for lang, p in prepared.items()}
    assert 'lang="ar" dir="rtl"' in html["ar"] and "تصلك هذه الرسالة" in text["ar"]
    assert 'lang="fr" dir="ltr"' in html["fr"] and "Vous recevez cet e-mail" in text["fr"]
    assert 'lang="en" dir="ltr"' in html["en"] and "You are receiving" in text["en"]
    # The document's own language stays the course's: the body is written in it.
    assert html["ar"].count('<html lang="en"') == 1
