"""The site's Content-Security-Policy header (django-csp), through Django's test client: on
every page, strict everywhere, widened on the instructor dashboard only as the comment in
lms_stub/views.py says. The browser side (no violation, CKEditor working, images held back)
is tests/e2e/test_csp.py."""

import pytest
from django.test import Client
from django.urls import reverse

from bulk_email.forms import ComposeForm
from lms_stub.demo import DEMO_COURSE_ID, seed_demo

pytestmark = pytest.mark.django_db


def policy_of(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


@pytest.fixture
def demo():
    seed_demo(learners=2)


def signed_in(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=username)
    return client


@pytest.mark.parametrize(
    ("username", "path"),
    [
        (None, "/login/"),
        ("learner", "/dashboard/"),
        ("learner", f"/email/settings/{DEMO_COURSE_ID}/"),
        ("admin", "/admin/"),
        ("admin", "/admin/bulk_email/sendauditentry/"),
        (None, "/no-such-page/"),
    ],
)
def test_every_page_forbids_inline_script_and_plugins(demo, username, path):
    client = signed_in(username) if username else Client()
    policy = policy_of(client.get(path))
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["img-src"] == "'self' data:"
    assert policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'self'" and policy["form-action"] == "'self'"
    assert policy["frame-ancestors"] == "'self'"


def test_the_instructor_dashboard_widens_styles_and_images_only(demo):
    page = signed_in("instructor").get(f"/courses/{DEMO_COURSE_ID}/instructor/?tab=email")
    policy = policy_of(page)
    assert policy["script-src"] == "'self'"  # never widened: no inline script, no eval
    assert policy["style-src"] == "'self' 'unsafe-inline'"  # CKEditor 4's styles
    assert policy["img-src"] == "'self' data: https: http:"  # "Show images" in the viewer
    assert b"<script>" not in page.content  # no inline script of ours in the page


def test_the_mailbox_frame_keeps_its_own_stricter_policy(settings, tmp_path):
    from tests.lms_stub.test_mailbox import deliver_many

    settings.MAILBOX_DIR, settings.MAILBOX_ENABLED = tmp_path, True
    deliver_many(tmp_path, ["Hello"])
    from lms_stub.mailbox import message_names

    (name,) = message_names(tmp_path)
    frame = Client().get(reverse("mailbox_message_html", args=[name]))
    assert policy_of(frame)["default-src"] == "'none'"


def test_the_ckeditor_shim_loads_after_ckeditor():
    scripts = [str(script) for script in ComposeForm().media._js]
    assert scripts.index("bulk_email/ckeditor_csp.js") > scripts.index(
        "ckeditor/ckeditor/ckeditor.js"
    )
