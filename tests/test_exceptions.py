from django.core.exceptions import ImproperlyConfigured, PermissionDenied

from bulk_email import exceptions


def test_every_error_is_a_bulk_email_error_and_its_standard_kind():
    assert issubclass(exceptions.BulkEmailConfigurationError, ImproperlyConfigured)
    assert issubclass(exceptions.BulkEmailDisabledError, PermissionDenied)
    assert issubclass(exceptions.NotCourseStaffError, PermissionDenied)
    assert issubclass(exceptions.InvalidEmailError, ValueError)
    assert issubclass(exceptions.UnknownCourseError, LookupError)
    for name in ("BulkEmailConfigurationError", "InvalidEmailError", "UnknownCourseError"):
        assert issubclass(getattr(exceptions, name), exceptions.BulkEmailError)


def test_invalid_email_error_names_its_field():
    error = exceptions.InvalidEmailError("Subject is empty.", field="subject")
    assert (str(error), error.field) == ("Subject is empty.", "subject")
