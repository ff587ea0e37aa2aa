"""One root exception; each subclass also inherits the standard type it is a kind of, so
callers can catch ``BulkEmailError`` or, say, ``ValueError`` (the anymail pattern)."""

from django.core.exceptions import ImproperlyConfigured, PermissionDenied


class BulkEmailError(Exception):
    """Root of every error bulk_email raises on purpose; its message is fit to show a user.

    ``code`` is stable (scripts rely on it, whatever the message's wording or language)."""

    code = "error"


class BulkEmailConfigurationError(BulkEmailError, ImproperlyConfigured):
    """The deployment is misconfigured (LMS backend, settings, SMTP credentials)."""

    code = "configuration"


class BulkEmailImproperlyInstalled(BulkEmailConfigurationError, ImportError):
    """An optional package a setting needs is missing; the message names the extra to install
    (the pattern of anymail's AnymailImproperlyInstalled)."""

    def __init__(self, *, module: str, extra: str):
        super().__init__(
            f"{module!r} is not installed, and this configuration needs it: "
            f"pip install 'bulk_email[{extra}]'"
        )
        self.module = module
        self.extra = extra


class EmailTemplateError(BulkEmailConfigurationError):
    """The email template (a CourseEmailTemplate or the file an operator overrode) does not
    have exactly one message body slot: sending would drop or repeat the message."""

    code = "email_template"


class BulkEmailDisabledError(BulkEmailError, PermissionDenied):
    """The feature flag or the course authorization says no."""

    code = "disabled"


class NotCourseStaffError(BulkEmailError, PermissionDenied):
    """The user is not Staff or Admin of the course."""

    code = "not_course_staff"


class NotEnrolledError(BulkEmailError, PermissionDenied):
    """The learner is not enrolled in the course whose email settings they tried to change."""

    code = "not_enrolled"


class InvalidEmailError(BulkEmailError, ValueError):
    """Bad input for an email (subject, body, targets, schedule); ``field`` names the field.

    ``errors`` maps every field found wrong to its message (the first one is ``field``), so
    a form can show each problem next to its field at once."""

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, errors: dict | None = None):
        super().__init__(message)
        self.field = field
        self.errors = errors if errors is not None else {field: message}


class BadRequestError(BulkEmailError, ValueError):
    """A request whose body or parameters are not what the endpoint reads (not JSON, a wrong
    type, no clear choice); ``field`` names the parameter when there is one."""

    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field
        self.errors = {field: message} if field else {}


class UnknownCourseError(BulkEmailError, LookupError):
    """The course key does not name a course of the LMS."""

    code = "unknown_course"


class UnknownTaskError(BulkEmailError, LookupError):
    """No send with that id belongs to the course."""

    code = "unknown_task"


class InvalidTokenError(BulkEmailError, ValueError):
    """An unsubscribe token that is forged, truncated, or bound to another course."""

    code = "invalid_token"


class TooManyRequestsError(BulkEmailError):
    """The person asked for the same thing too often (a test message to their address)."""

    code = "rate_limited"


class AddressTestNotSentError(BulkEmailError):
    """The test message to a learner's own address could not be handed to the mail server."""

    code = "test_not_sent"


class SendError(BulkEmailError):
    """Sending stopped part-way through a batch.

    ``outcomes`` are the recipients already dealt with (record them: they must not be sent
    again); ``unsent`` are the recipients still owed the message, in order."""

    def __init__(self, reason: str, *, code: int | None = None, outcomes=(), unsent=()):
        super().__init__(reason)
        self.reason = reason
        # Set by the pipeline: failures in a row without progress (drives the backoff).
        self.stalls = 0
        self.code = code
        self.outcomes = list(outcomes)
        self.unsent = list(unsent)


class TransientSendError(SendError, ConnectionError):
    """A 4xx reply, a timeout or a disconnect: back off and retry ``unsent`` later."""


class SMTPConfigurationError(SendError, BulkEmailConfigurationError):
    """The mail server cannot be used as configured (auth, TLS, no server): stop and say why."""
