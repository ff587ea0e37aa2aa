"""One root exception; each subclass also inherits the standard type it is a kind of, so
callers can catch ``BulkEmailError`` or, say, ``ValueError`` (the anymail pattern)."""

from django.core.exceptions import ImproperlyConfigured, PermissionDenied


class BulkEmailError(Exception):
    """Root of every error bulk_email raises on purpose; its message is fit to show a user."""


class BulkEmailConfigurationError(BulkEmailError, ImproperlyConfigured):
    """The deployment is misconfigured (LMS backend, settings, SMTP credentials)."""


class BulkEmailDisabledError(BulkEmailError, PermissionDenied):
    """The feature flag or the course authorization says no."""


class NotCourseStaffError(BulkEmailError, PermissionDenied):
    """The user is not Staff or Admin of the course."""


class InvalidEmailError(BulkEmailError, ValueError):
    """Bad input for an email (subject, body, targets, schedule); ``field`` names the field."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class UnknownCourseError(BulkEmailError, LookupError):
    """The course key does not name a course of the LMS."""
