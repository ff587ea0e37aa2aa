import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from bulk_email.exceptions import BulkEmailConfigurationError
from bulk_email.lms import LMSBackend, get_lms
from lms_stub.bulk_email_backend import StubLMSBackend


def test_get_lms_returns_one_instance_of_the_configured_backend():
    assert isinstance(get_lms(), StubLMSBackend)
    assert get_lms() is get_lms()


@pytest.mark.parametrize(
    ("dotted_path", "message"),
    [
        (None, "is not set"),
        ("no.such.Backend", "cannot be imported"),
        ("bulk_email.models.Optout", "not a subclass"),
    ],
)
def test_misconfigured_backend_is_a_clear_configuration_error(dotted_path, message):
    with (
        override_settings(BULK_EMAIL={"LMS_BACKEND": dotted_path}),
        pytest.raises(BulkEmailConfigurationError, match=message) as raised,
    ):
        get_lms()
    assert isinstance(raised.value, ImproperlyConfigured)


def test_the_base_class_owes_every_method():
    backend = LMSBackend()
    with pytest.raises(NotImplementedError):
        backend.get_course("course-v1:A+B+C")
    with pytest.raises(NotImplementedError):
        backend.course_staff("course-v1:A+B+C")


def test_an_lms_that_knows_no_preferred_language_says_so():
    """The default: every footer then follows the course's language, else the site's."""
    assert LMSBackend().preferred_languages([1, 2, 3]) == {}
