"""bulk_email's settings: ``settings.BULK_EMAIL`` merged over DEFAULTS, read on every access.

Reading on access (not at import) keeps ``override_settings(BULK_EMAIL=...)`` working in
tests, as django-debug-toolbar does.
"""

import hashlib
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from django.conf import settings

from .exceptions import BulkEmailImproperlyInstalled

DEFAULTS: dict[str, Any] = {
    # Dotted path of the class implementing bulk_email.lms.LMSBackend for the host LMS.
    "LMS_BACKEND": None,
    # Absolute base URL used in links inside mail (unsubscribe, email settings).
    "SITE_URL": "http://localhost:8000",
    # From address of course mail (display name "<course name> Course Staff"); None: the
    # project's own DEFAULT_FROM_EMAIL (Django's setting), as an integrator expects.
    "DEFAULT_FROM_EMAIL": None,
    # Per organization and per course (a course's entry wins): the email template its sends
    # use, and the From addresses its staff choose among (the first is the default), as
    # Open edX's course_email_template_name and course_email_from_addr. E.g.
    # {"MITx": "mitx-branded"}, {"course-v1:MITx+6.002x+2026": ["6.002x <6002x@mitx.example>"]}.
    "TEMPLATE_BY_ORG": {},
    "TEMPLATE_BY_COURSE": {},
    "FROM_ADDRESSES_BY_ORG": {},
    "FROM_ADDRESSES_BY_COURSE": {},
    # Recipients per batch row and per send_batch task.
    "EMAILS_PER_TASK": 500,
    # Learners who have not logged in for this many months are not mailed; None turns it off.
    "LAST_LOGIN_ELIGIBILITY_MONTHS": 18,
    # Sends with more recipients than this go to LARGE_QUEUE, the rest to QUEUE.
    "LARGE_SEND_THRESHOLD": 2000,
    # The celery queues of every bulk_email task (Open edX's BULK_EMAIL_ROUTING_KEY_SMALL_JOBS
    # and BULK_EMAIL_ROUTING_KEY): start workers that read both, e.g. -Q default,large.
    "QUEUE": "default",
    "LARGE_QUEUE": "large",
    # Reconnect after this many messages on one SMTP session (Amazon SES closes near 350).
    "MAX_MESSAGES_PER_CONNECTION": 300,
    # Messages per second across all workers on all machines; None means unlimited.
    "MAX_SEND_RATE": None,
    # Transient failures (4xx, disconnects) of a batch: retries and the first delay in seconds.
    "MAX_RETRIES": 10,
    "RETRY_DELAY": 5,
    # The longest backoff between two tries of a batch, in seconds.
    "RETRY_MAX_DELAY": 600,
    # {"domain": ..., "selector": ..., "private_key": PEM} to DKIM-sign; None to not sign.
    "DKIM": None,
    # Subject length limit (the reference system's).
    "SUBJECT_MAX_LENGTH": 128,
    # A send is scheduled at most this many days ahead.
    "MAX_SCHEDULE_DAYS": 365,
    # Largest composed HTML accepted, in characters (mail clients clip far below this).
    "MAX_HTML_LENGTH": 1_000_000,
    # Deepest nesting of elements accepted in the composed HTML: the sanitizer's cost grows
    # with the square of the depth, and no email layout needs more than a few dozen.
    "MAX_HTML_NESTING": 100,
    # Most elements (tags) accepted in it: the text part's conversion takes ~80 us a tag, so
    # a megabyte of tiny tags took 10 s; 5,000 is a long newsletter.
    "MAX_HTML_ELEMENTS": 5000,
    # A batch (or fan-out) whose worker shows no progress for this long is taken over.
    "BATCH_LEASE_SECONDS": 120,
    # A batch still Pending this long after it was enqueued is enqueued again: its message was
    # lost (a broker restarted without persistence). A duplicate message is a no-op.
    "PENDING_REQUEUE_SECONDS": 1800,
    # Redis for state the workers share: the send-rate limit and per-message progress notes.
    # None: CELERY_BROKER_URL when it is a redis:// URL, else none (a per-process limiter,
    # progress written to the database after every message).
    "REDIS_URL": None,
    # The start of every key bulk_email writes in Redis (progress notes, the send-rate bucket).
    # None: "bulk_email:<a digest of the default database's HOST and NAME>:", so two sites
    # sharing one Redis database keep apart while every process of one site agrees.
    "REDIS_KEY_PREFIX": None,
    # With Redis, a batch's row (the counts staff see) is brought up to date at least this
    # often while it sends; each message is noted in Redis in between.
    "PROGRESS_CHECKPOINT_SECONDS": 1.0,
    # Postal address in the footer (CAN-SPAM) when the LMS gives none for the course.
    "POSTAL_ADDRESS": "",
    # Name of the CourseEmailTemplate used when an email names none; "" means the shipped one.
    "DEFAULT_TEMPLATE_NAME": "",
    # The domain whose mail bulk_email reads (docs/feedback.md): each message's envelope sender
    # is bounces+TOKEN@ it (VERP) and List-Unsubscribe's mailto unsubscribe+TOKEN@ it. None:
    # no VERP and no mailto at all (never an address that nothing reads).
    "FEEDBACK_DOMAIN": None,
    # Temporary failures (4.x.x) of one address within SOFT_BOUNCE_DAYS that suppress it.
    "SOFT_BOUNCE_LIMIT": 3,
    "SOFT_BOUNCE_DAYS": 7,
    # Finished sends older than this many days are folded by the purge_sends beat task
    # (recipient lists and failed/skipped rows deleted, counts kept); None keeps everything.
    "RETENTION_DAYS": None,
    # A send's bounce and complaint rates above these are shown with a warning (Amazon SES
    # reviews an account at 5 % bounces and 0.1 % complaints).
    "BOUNCE_RATE_WARNING": 0.05,
    "COMPLAINT_RATE_WARNING": 0.001,
    # Hear ESP webhooks (bounces, complaints, unsubscribes) through django-anymail's signals;
    # needs bulk_email[anymail], anymail's URLs and its WEBHOOK_SECRET (docs/feedback.md).
    "ESP_WEBHOOKS": False,
    # The Email tab reloads its history this often (seconds), so that the bounces and
    # complaints that arrive after a send ends show up without reloading the page.
    "HISTORY_REFRESH_SECONDS": 30,
    # A learner whose address bounced may send a test message to it this many times an hour
    # (counted in Django's cache: use a shared one, e.g. Redis, when the site runs many processes).
    "ADDRESS_TEST_LIMIT_PER_HOUR": 3,
    # The Django cache (an alias of CACHES) that keeps the Email tab's group counts, computed
    # by a worker and read by the site: it must be shared by both (Redis, Memcached, files),
    # not the per-process local memory (docs/performance.md).
    "AUDIENCE_CACHE": "default",
    # How long counts are kept at most. Enrollments, opt-outs and suppressions make them
    # recounted at once; this bounds what nothing announces (a learner logging in again after
    # the last-login cutoff, the cutoff itself moving on).
    "AUDIENCE_CACHE_SECONDS": 600,
    # A course whose Email tab was opened within this is "in use": its counts are recounted
    # by a worker as soon as a change commits and again before they expire, so that the next
    # page finds them ready (docs/performance.md).
    "AUDIENCE_WATCH_SECONDS": 3600,
    # At most one such recount of a course in this window, at once; the changes that come
    # later in the window are counted by one recount at its end: a flood of changes (a bounce
    # storm suppressing addresses) must not keep a worker counting a million learners.
    "AUDIENCE_RECOUNT_SECONDS": 10,
    # Larger feedback messages are refused unread (counted as ignored).
    "MAX_FEEDBACK_MESSAGE_BYTES": 10 * 1024 * 1024,
    # The mailbox `manage.py poll_feedback` reads (docs/feedback.md), one of the two: an IMAP
    # folder over TLS, {"host", "user", "password", "port", "folder": "INBOX", "ssl": True,
    # "starttls": False, "processed_folder": "", "ca_file": None, "timeout": 30} ...
    "FEEDBACK_IMAP": None,
    # ... or the path of a local Maildir (processed messages move into its .Processed folder).
    "FEEDBACK_MAILDIR": None,
    # Messages one poll_feedback run takes at most (--limit overrides it).
    "FEEDBACK_POLL_LIMIT": 1000,
    # With Redis as its lock (no PostgreSQL), a poller that died frees the mailbox after this.
    "FEEDBACK_POLL_LOCK_SECONDS": 300,
}


def get(name: str) -> Any:
    """The current value of one bulk_email setting."""
    if name not in DEFAULTS:
        raise KeyError(f"Unknown bulk_email setting {name!r}")
    return getattr(settings, "BULK_EMAIL", {}).get(name, DEFAULTS[name])


def unknown_names() -> list[str]:
    """Names in settings.BULK_EMAIL that bulk_email does not know (typos)."""
    return sorted(set(getattr(settings, "BULK_EMAIL", {})) - set(DEFAULTS))


def redis_url() -> str | None:
    """BULK_EMAIL["REDIS_URL"], else the celery broker when it is Redis, else None."""
    url = get("REDIS_URL") or getattr(settings, "CELERY_BROKER_URL", "") or ""
    return url if url.startswith(("redis://", "rediss://", "unix://")) else None


def redis_key_prefix() -> str:
    """REDIS_KEY_PREFIX, else one derived from the site's default database: its processes all
    use that database, and another site sharing the Redis database uses another one."""
    prefix = get("REDIS_KEY_PREFIX")
    if prefix:
        return prefix
    database = settings.DATABASES.get("default", {})
    site = f"{database.get('HOST') or ''}/{database.get('NAME') or ''}"
    return f"bulk_email:{hashlib.sha256(site.encode()).hexdigest()[:12]}:"


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a setting's value (dicts and lists become sorted tuples)."""
    if isinstance(value, dict):
        return tuple(sorted((str(key), _frozen(item)) for key, item in value.items()))
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(_frozen(item) for item in value)
    return value


@dataclass(frozen=True)
class SettingsSnapshot:
    """Every bulk_email setting as it is now, with the SECRET_KEY that signs tokens and ids:
    hashable, so it keys whatever is cached per process. Taken whole, never from a list of
    names kept by hand, so a setting read for the first time can never be left out."""

    values: tuple
    secret_key: str


def snapshot() -> SettingsSnapshot:
    values = tuple((name, _frozen(get(name))) for name in DEFAULTS)
    return SettingsSnapshot(values=values, secret_key=settings.SECRET_KEY)


def import_optional(module: str, *, extra: str) -> ModuleType:
    """``module``, or a configuration error that names the pip extra which installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise BulkEmailImproperlyInstalled(module=module, extra=extra) from error


def from_email() -> str:
    """The From address of course mail: BULK_EMAIL's, else Django's DEFAULT_FROM_EMAIL."""
    return get("DEFAULT_FROM_EMAIL") or settings.DEFAULT_FROM_EMAIL
