"""rendering/languages.py: which language a learner's message is prepared in."""

import pytest

from bulk_email.rendering import message_language, supported_language


@pytest.mark.parametrize(
    ("preferred", "course", "chosen"),
    [
        ("fr", "ar", "fr"),  # the learner's own first
        ("ar", "", "ar"),
        ("de", "fr", "fr"),  # not one of the site's: the course's
        ("", "ar", "ar"),
        (None, None, "en"),  # neither: the site's LANGUAGE_CODE
        ("de", "ja", "en"),
        ("fr-CA", "", "fr"),  # a variant: its base language
        ("AR", "", "ar"),
    ],
)
def test_the_learners_language_then_the_courses_then_the_sites(preferred, course, chosen):
    assert message_language(preferred, course) == chosen


@pytest.mark.parametrize(
    "hostile",
    ["", " ", "../../etc/passwd", "fr\r\nBcc: x@example.com", "x" * 5000, "<script>", 42, "fr;"],
)
def test_a_code_the_site_does_not_have_is_none_whatever_the_lms_sends(hostile):
    assert supported_language(hostile) is None
    assert message_language(hostile, hostile) == "en"
