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


@pytest.mark.parametrize("secret", ["one secret", "another, rotated"])
def test_the_derived_anonymous_id_is_django_s_salted_hmac(secret):
    """Derived through a key computed once per process, the id stays the one Django's
    ``salted_hmac`` gives: ids sent before the change still match."""
    from django.utils.crypto import salted_hmac

    from bulk_email.lms import derived_anonymous_id

    course = "course-v1:Org+Ünï+2026"
    with override_settings(SECRET_KEY=secret):
        for user_id in (1, 42, 10**12):
            value = f"{course}\n{user_id}"
            expected = salted_hmac("bulk_email.anonymous_user_id", value, algorithm="sha256")
            assert derived_anonymous_id(course, user_id) == expected.hexdigest()[:32]


def test_an_lms_that_knows_no_preferred_language_says_so():
    """The default: every footer then follows the course's language, else the site's."""
    assert LMSBackend().preferred_languages([1, 2, 3]) == {}
