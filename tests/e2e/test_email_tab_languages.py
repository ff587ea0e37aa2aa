"""The Email tab in French and in Arabic, in real Chromium: compose, send to a group, watch a
real worker's progress, find the send in the history and View it, with not one English word of
the tab's own left on the page; in Arabic the tab is right-to-left and its layout mirrors.

The language is the one a person picks in the site's selector: Django's language cookie."""

import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import translation
from playwright.sync_api import expect

from bulk_email.models import RecipientOutcome
from lms_stub.demo import DEMO_COURSE_ID, seed_demo
from lms_stub.models import Course
from tests.e2e.conftest import log_in
from tests.e2e.test_email_tab import TAB, type_in_editor
from tests.factories import finished_task, make_user, record_outcome

pytestmark = pytest.mark.django_db(transaction=True)

# What the tab itself says in English (buttons, headings, states, counts, group names). The
# page is searched for each as a whole word, case-sensitively.
ENGLISH_UI_WORDS = [
    "Send", "Send email", "Subject", "Message", "Myself", "Staff and Administrators",
    "All Learners", "Learners", "Cohort", "Track", "Schedule", "Scheduled", "Pending",
    "History", "Sent", "sent", "failed", "skipped", "people", "person", "View", "Edit",
    "Delete", "Cancel", "Progress", "Success", "Preview", "Close", "Confirm", "Result",
    "Author", "Email", "Now", "When", "Task", "Requester", "Duration", "Bounced", "Complained",
    "Delivery report", "Download", "characters", "your time", "No email",
]  # fmt: skip
# Words French spells as English does: finding them proves nothing.
SAME_IN = {"fr": {"Message"}, "ar": set()}
# What the test itself typed, in the page's language: not the tab's words.
SUBJECTS = {"fr": "Bienvenue dans le cours, semaine 1", "ar": "مرحبًا بكم في المساق، الأسبوع 1"}
BODIES = {"fr": "Bonjour à toutes et à tous.", "ar": "أهلًا وسهلًا بالجميع."}


def translated(language: str, text: str) -> str:
    """What the server writes (templates, Python): Django's catalogs."""
    with translation.override(language):
        return translation.gettext(text)


def script_catalog(language: str) -> gettext.GNUTranslations:
    """What the tab's script writes: the djangojs catalog its JavaScriptCatalog serves."""
    import bulk_email

    locale = Path(bulk_email.__file__).parent / "locale"
    return gettext.translation("djangojs", localedir=locale, languages=[language])


def open_tab_in(page, live_server, language: str) -> None:
    """Sign in, pick the language (the cookie set_language writes), open the Email tab."""
    log_in(page, live_server, "instructor", "instructor")
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
    )
    page.goto(live_server.url + TAB)
    page.locator("#cke_bulk-email-message .cke_wysiwyg_frame").wait_for()
    adopt_the_tab_direction(page)


def adopt_the_tab_direction(page) -> None:
    """The tab says its language and direction on its root; the site's base template sets
    them on <html> too. Where it does not (yet), they are set here from what the tab says, so
    that what is checked is the tab's own layout under the page's direction."""
    page.evaluate(
        """() => {
          const tab = document.getElementById("bulk-email-tab");
          const html = document.documentElement;
          if (!html.getAttribute("lang")) html.lang = tab.lang;
          if (!html.getAttribute("dir")) html.dir = tab.dir;
        }"""
    )


def english_left(page, language: str, typed: list[str]) -> list[str]:
    """The English UI words on the page's visible text of the dashboard's tabs and the Email
    tab (what the test typed removed first)."""
    text = page.evaluate(
        """() => [document.querySelector("nav.tabs"), document.getElementById("bulk-email-tab")]
          .map((node) => node.innerText).join("\\n")"""
    )
    for value in [*typed, *course_data()]:
        text = text.replace(value, "")
    words = [w for w in ENGLISH_UI_WORDS if w not in SAME_IN[language]]
    return [w for w in words if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text)]


def course_data() -> list[str]:
    """Names the course's data gives (cohorts such as "Cohort A", tracks, people): the LMS's
    words, not the tab's."""
    from lms_stub.models import Cohort, CourseMode

    names = [*Cohort.objects.values_list("name", flat=True)]
    names += CourseMode.objects.values_list("mode_display_name", flat=True)
    return sorted(names, key=len, reverse=True)  # "Cohort A" before "Cohort"


def number_in_page(page, n: int) -> str:
    """n as the tab writes it: Intl.NumberFormat in the tab's language."""
    return page.evaluate(
        "(n) => new Intl.NumberFormat(document.getElementById('bulk-email-tab').lang).format(n)",
        n,
    )


def counts_line(page, script: gettext.GNUTranslations, **counts: int) -> str:
    """A counts line as the tab writes it ("1 sent, 0 failed"): each count its own plural
    text for its number, in the page's digits, joined by the language's separator."""
    parts = [
        script.ngettext(f"%(count)s {word}", f"%(count)s {word}", n)
        % {"count": number_in_page(page, n)}
        for word, n in counts.items()
    ]
    return script.pgettext("list separator", ", ").join(parts)


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_compose_send_progress_history_in_the_page_language(
    language, live_server, live_pipeline, smtp_sink, page, screenshot
):
    seed_demo()
    live_pipeline.start_worker()
    open_tab_in(page, live_server, language)
    tab = page.locator("#bulk-email-tab")
    expect(tab).to_have_attribute("lang", language)
    assert english_left(page, language, []) == []
    screenshot(f"email-tab-{language}")

    subject, body = SUBJECTS[language], BODIES[language]
    page.get_by_label(translated(language, "Myself")).check()
    page.locator("#bulk-email-subject").fill(subject)
    type_in_editor(page, body)
    one = number_in_page(page, 1)
    script = script_catalog(language)
    one_person = script.ngettext("%(count)s person", "%(count)s people", 1) % {"count": one}
    page.locator("#bulk-email-submit").click()
    dialog = page.locator("#bulk-email-confirm")
    expect(dialog.locator("h3")).to_have_text(script.gettext("Send the email?"))
    expect(dialog.locator("#bulk-email-confirm-text")).to_contain_text(one_person)
    assert english_left(page, language, [subject, body]) == []
    dialog.locator("#bulk-email-confirm-ok").click()

    run = page.locator(".bulk-email-run").first
    expect(run.locator(".bulk-email-state")).to_have_text(
        translated(language, "Success"), timeout=60_000
    )
    counts = script.gettext("%(counts)s of %(total)s") % {
        "counts": counts_line(page, script, sent=1, failed=0, skipped=0),
        "total": one,
    }
    expect(run.locator(".bulk-email-counts")).to_have_text(counts)
    smtp_sink.wait_for(1, timeout=30)
    assert smtp_sink.messages[0].parsed()["Subject"] == subject

    sent = page.locator("#bulk-email-sent tbody tr").first
    expect(sent).to_contain_text(subject)
    expect(sent).to_contain_text(translated(language, "Myself"))
    month = page.evaluate(
        "(lang) => new Intl.DateTimeFormat(lang, {month: 'short'}).format(new Date())", language
    )
    expect(sent.locator("td").first).to_contain_text(month)  # the date, in the page's language
    assert english_left(page, language, [subject, body]) == []
    page.locator("#bulk-email-sent-heading").evaluate("h => h.scrollIntoView()")
    screenshot(f"email-tab-{language}-history", full_page=False)

    sent.get_by_role("button", name=re.compile("^" + script.gettext("View"))).click()
    viewer = page.locator("#bulk-email-viewer")
    expect(viewer.locator("#bulk-email-viewer-subject")).to_have_text(subject)
    expect(viewer.get_by_role("button", name=translated(language, "Close"))).to_be_visible()
    viewer.get_by_role("button", name=translated(language, "Close")).click()


def test_each_count_agrees_with_its_own_number_in_french(live_server, page, screenshot):
    """One sent and two skipped: "1 envoyé" and "2 ignorés", not "envoyé(s)" for both. The
    history's line and the delivery report's counts each say it."""
    seed_demo()
    instructor = get_user_model().objects.get(username="instructor")
    course = Course.objects.get(pk=DEMO_COURSE_ID)
    task = finished_task(course, instructor, sent=1, subject=SUBJECTS["fr"])
    for i in range(2):
        record_outcome(task, make_user(f"absent{i}"), status=RecipientOutcome.SKIPPED)
    open_tab_in(page, live_server, "fr")

    sent = page.locator(f"#bulk-email-sent tbody tr[data-task-id='{task.pk}']")
    result = sent.locator(".bulk-email-result > span").first
    expect(result).to_have_text("1 envoyé, 0 en échec, 2 ignorés")
    # The rates in French digits: "0 %" with a narrow no-break space.
    feedback = re.compile(r"^0 rebond \(0\s%\), 0 plainte \(0\s%\)$")
    expect(sent.locator(".bulk-email-feedback")).to_have_text(feedback)
    assert "(s)" not in sent.inner_text()
    page.locator("#bulk-email-sent-heading").evaluate("h => h.scrollIntoView()")
    screenshot("email-tab-fr-plurals", full_page=False)

    sent.get_by_role("button", name=re.compile("^Rapport de remise")).click()
    expect(page.locator("#bulk-email-delivery-counts")).to_have_text(
        "0 en échec · 2 ignorés · 0 rebond · 0 plainte"
    )


def test_arabic_tab_is_right_to_left_and_mirrors(live_server, page, screenshot):
    seed_demo()
    open_tab_in(page, live_server, "ar")
    tab = page.locator("#bulk-email-tab")
    expect(tab).to_have_attribute("dir", "rtl")
    assert page.evaluate("() => document.documentElement.dir") == "rtl"
    direction = "() => getComputedStyle(document.getElementById('bulk-email-tab')).direction"
    assert page.evaluate(direction) == "rtl"

    # A group's checkbox sits right of its label, and the tab's heading hugs the right edge.
    first_group = page.locator(".bulk-email-groups li").first
    box = first_group.locator("input[type=checkbox]").bounding_box()
    label = first_group.locator("label").bounding_box()
    assert box["x"] > label["x"] + label["width"] - 1
    tab_box = tab.bounding_box()
    heading = heading_text_box(page, "#bulk-email-tab h2")
    assert tab_box["x"] + tab_box["width"] - (heading["x"] + heading["width"]) < 20
    assert heading["x"] - tab_box["x"] > tab_box["width"] / 2
    # The actions row starts on the right: Preview, its first button, is right of Send.
    preview = page.locator("#bulk-email-preview").bounding_box()
    submit = page.locator("#bulk-email-submit").bounding_box()
    assert preview["x"] > submit["x"]
    # CKEditor speaks Arabic too, right-to-left (its own catalog, chosen from the page's language).
    expect(page.locator("#cke_bulk-email-message")).to_have_attribute("dir", "rtl")
    expect(page.locator("#cke_bulk-email-message")).to_have_attribute("lang", "ar")
    screenshot("email-tab-ar-compose", full_page=False)


def heading_text_box(page, selector: str) -> dict:
    """Where the heading's text is (not its block, which spans the whole width)."""
    return page.evaluate(
        """(selector) => {
          const range = document.createRange();
          range.selectNodeContents(document.querySelector(selector));
          const r = range.getBoundingClientRect();
          return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height};
        }""",
        selector,
    )


def test_ckeditor_speaks_french(live_server, page):
    seed_demo()
    open_tab_in(page, live_server, "fr")
    editor = page.locator("#cke_bulk-email-message")
    expect(editor).to_have_attribute("lang", "fr")
    # The Source button's tooltip, from CKEditor's own French catalog.
    expect(editor.locator(".cke_button__source")).to_have_attribute("title", re.compile("Source"))
    expect(editor.locator(".cke_button__bold")).to_have_attribute("title", re.compile("Gras"))
