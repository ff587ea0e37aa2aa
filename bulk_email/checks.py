"""System checks for a misconfigured deployment, reported by ``manage.py check`` and at start."""

import importlib
import re
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core import checks
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import app_settings, rendering
from .exceptions import BulkEmailConfigurationError, BulkEmailError, EmailTemplateError
from .feedback import mailboxes
from .lms import LMSBackend
from .rendering.dkim import as_text, ed25519_signer, header_start, rsa_signer


def for_bulk_email(check: Callable) -> Callable:
    """Run ``check`` only when bulk_email is among the apps asked about: ``manage.py check
    other_app`` must not report bulk_email's settings (Django's ``app_configs`` contract)."""

    @wraps(check)
    def run(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
        if app_configs is not None and not any(c.name == "bulk_email" for c in app_configs):
            return []
        return check(**kwargs)

    return run


@for_bulk_email
def check_lms_backend(**kwargs) -> list[checks.CheckMessage]:
    dotted_path = app_settings.get("LMS_BACKEND")
    if not dotted_path:
        return [
            checks.Error(
                _('BULK_EMAIL["LMS_BACKEND"] is not set.'),
                hint=_("Name the class that implements bulk_email.lms.LMSBackend for your LMS."),
                id="bulk_email.E001",
            )
        ]
    try:
        backend_class = import_string(dotted_path)
    except ImportError as error:
        return [
            checks.Error(
                _('BULK_EMAIL["LMS_BACKEND"] = %(path)r cannot be imported: %(error)s')
                % {"path": dotted_path, "error": error},
                id="bulk_email.E002",
            )
        ]
    if not (isinstance(backend_class, type) and issubclass(backend_class, LMSBackend)):
        return [
            checks.Error(
                _(
                    'BULK_EMAIL["LMS_BACKEND"] = %(path)r is not a subclass of '
                    "bulk_email.lms.LMSBackend."
                )
                % {"path": dotted_path},
                id="bulk_email.E003",
            )
        ]
    return []


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_positive_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@for_bulk_email
def check_numbers(**kwargs) -> list[checks.CheckMessage]:
    errors = []
    for name in (
        "EMAILS_PER_TASK",
        "MAX_MESSAGES_PER_CONNECTION",
        "LARGE_SEND_THRESHOLD",
        "BATCH_LEASE_SECONDS",
        "PENDING_REQUEUE_SECONDS",
        "MAX_HTML_ELEMENTS",
        "ADDRESS_TEST_LIMIT_PER_HOUR",
        "FEEDBACK_POLL_LIMIT",
        "FEEDBACK_POLL_LOCK_SECONDS",
    ):
        if not _is_positive_int(app_settings.get(name)):
            errors.append(
                checks.Error(
                    _('BULK_EMAIL["%(name)s"] must be a positive integer.') % {"name": name},
                    id="bulk_email.E004",
                )
            )
    months = app_settings.get("LAST_LOGIN_ELIGIBILITY_MONTHS")
    if months is not None and not _is_positive_int(months):
        errors.append(
            checks.Error(
                _(
                    'BULK_EMAIL["LAST_LOGIN_ELIGIBILITY_MONTHS"] must be a positive integer '
                    "or None."
                ),
                id="bulk_email.E005",
            )
        )
    errors += [
        checks.Error(
            _('BULK_EMAIL["%(name)s"] must be a positive number.') % {"name": name},
            id="bulk_email.E009",
        )
        for name in (
            "RETRY_DELAY",
            "RETRY_MAX_DELAY",
            "PROGRESS_CHECKPOINT_SECONDS",
            "HISTORY_REFRESH_SECONDS",
        )
        if not _is_positive_number(app_settings.get(name))
    ]
    rate = app_settings.get("MAX_SEND_RATE")
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0
    ):
        errors.append(
            checks.Error(
                _('BULK_EMAIL["MAX_SEND_RATE"] must be a positive number or None.'),
                id="bulk_email.E006",
            )
        )
    return errors


# Ten years: beyond it a schedule is a typo, and near the end of the calendar it cannot be stored.
MAX_SCHEDULE_DAYS_LIMIT = 3650


@for_bulk_email
def check_schedule_horizon(**kwargs) -> list[checks.CheckMessage]:
    days = app_settings.get("MAX_SCHEDULE_DAYS")
    if _is_positive_int(days) and days <= MAX_SCHEDULE_DAYS_LIMIT:
        return []
    return [
        checks.Error(
            _('BULK_EMAIL["MAX_SCHEDULE_DAYS"] must be a whole number of days from 1 to %(max)d.')
            % {"max": MAX_SCHEDULE_DAYS_LIMIT},
            hint=_("How far ahead staff may schedule a send (365 by default)."),
            id="bulk_email.E010",
        )
    ]


# Beyond this the sanitizer's quadratic cost in the depth is seconds per message again.
MAX_HTML_NESTING_LIMIT = 1000


@for_bulk_email
def check_html_nesting(**kwargs) -> list[checks.CheckMessage]:
    nesting = app_settings.get("MAX_HTML_NESTING")
    if _is_positive_int(nesting) and nesting <= MAX_HTML_NESTING_LIMIT:
        return []
    return [
        checks.Error(
            _('BULK_EMAIL["MAX_HTML_NESTING"] must be a whole number from 1 to %(max)d.')
            % {"max": MAX_HTML_NESTING_LIMIT},
            hint=_("How deeply a message's elements may nest (100 by default)."),
            id="bulk_email.E012",
        )
    ]


@for_bulk_email
def check_redis_key_prefix(**kwargs) -> list[checks.CheckMessage]:
    prefix = app_settings.get("REDIS_KEY_PREFIX")
    if prefix is None or (isinstance(prefix, str) and prefix):
        return []
    return [
        checks.Error(
            _('BULK_EMAIL["REDIS_KEY_PREFIX"] must be a non-empty string or None.'),
            hint=_("None derives one from the default database, unique to this site."),
            id="bulk_email.E011",
        )
    ]


@for_bulk_email
def check_site_url(**kwargs) -> list[checks.CheckMessage]:
    site_url = app_settings.get("SITE_URL")
    if not isinstance(site_url, str) or not site_url.startswith(("http://", "https://")):
        return [
            checks.Error(
                _('BULK_EMAIL["SITE_URL"] must be an absolute http(s) URL: links in mail use it.'),
                id="bulk_email.E007",
            )
        ]
    return []


@for_bulk_email
def check_dkim(**kwargs) -> list[checks.CheckMessage]:
    dkim = app_settings.get("DKIM")
    if dkim is None:
        return []
    missing = {"domain", "selector", "private_key"} - set(dkim if isinstance(dkim, dict) else {})
    if missing:
        return [
            checks.Error(
                _('BULK_EMAIL["DKIM"] lacks %(missing)s.')
                % {"missing": ", ".join(sorted(missing))},
                hint=_("Give domain, selector and private_key (PEM), or set it to None."),
                id="bulk_email.E008",
            )
        ]
    return dkim_key_problems(dkim)


def dkim_key_problems(dkim: dict) -> list[checks.CheckMessage]:
    """E016: the RSA key, domain or selector cannot sign; E017: the optional Ed25519 one.
    Each key is loaded as the first send would load it, so a bad key fails here, at start,
    not as every send's failure."""
    problems = []
    try:
        domain, selector, private_key = map(
            as_text, (dkim["domain"], dkim["selector"], dkim["private_key"])
        )
        header_start(b"rsa-sha256", domain, selector)
        rsa_signer(private_key)
    except BulkEmailError as error:
        problems.append(checks.Error(str(error), hint=DKIM_KEY_HINT, id="bulk_email.E016"))
        return problems  # the Ed25519 one needs the domain too
    ed25519 = (dkim.get("ed25519_selector"), dkim.get("ed25519_private_key"))
    if any(ed25519):
        try:
            if not all(ed25519):
                raise BulkEmailConfigurationError(
                    _('BULK_EMAIL["DKIM"] needs both "ed25519_selector" and "ed25519_private_key".')
                )
            header_start(b"ed25519-sha256", domain, as_text(ed25519[0]))
            ed25519_signer(as_text(ed25519[1]))
        except BulkEmailError as error:
            problems.append(checks.Error(str(error), hint=DKIM_ED25519_HINT, id="bulk_email.E017"))
    return problems


DKIM_KEY_HINT = gettext_lazy(
    "private_key: an unencrypted RSA key in PEM, 2048 bits (openssl genrsa 2048); domain and "
    "selector as published in DNS (SELECTOR._domainkey.DOMAIN)."
)
DKIM_ED25519_HINT = gettext_lazy(
    "ed25519_private_key: an Ed25519 key in PEM (openssl genpkey -algorithm ed25519) or the "
    "base64 seed dkimpy's dknewkey writes; ed25519_selector: a selector of its own."
)


@for_bulk_email
def check_feedback_domain(**kwargs) -> list[checks.CheckMessage]:
    """Without FEEDBACK_DOMAIN nothing hears what comes back: bounces go to the From address
    and nobody suppresses a dead address, which mailbox providers count against the sender."""
    if app_settings.get("FEEDBACK_DOMAIN"):
        return []
    return [
        checks.Warning(
            _(
                'BULK_EMAIL["FEEDBACK_DOMAIN"] is not set: bounces, complaints and mailed '
                "unsubscribes are not read, and List-Unsubscribe offers no mailto."
            ),
            hint=_(
                "Give a domain whose mail reaches bulk_email's feedback reader; see "
                "docs/feedback.md."
            ),
            id="bulk_email.W002",
        )
    ]


ANYMAIL_TRACKING_URL = "anymail:amazon_ses_tracking_webhook"  # any of anymail's URLs would do


@for_bulk_email
def check_esp_webhooks(**kwargs) -> list[checks.CheckMessage]:
    """ESP_WEBHOOKS needs anymail installed, its URLs routed and a WEBHOOK_SECRET: without
    the secret anyone could post forged bounces and suppress any address (anymail itself only
    warns, and lets such posts in)."""
    if not app_settings.get("ESP_WEBHOOKS"):
        return []
    if not _anymail_installed():
        return [
            checks.Error(
                _('BULK_EMAIL["ESP_WEBHOOKS"] is on, but django-anymail is not installed.'),
                hint=_("pip install 'bulk_email[anymail]', or turn ESP_WEBHOOKS off."),
                id="bulk_email.E013",
            )
        ]
    return _webhook_secret_errors() + _anymail_url_warnings()


def _anymail_installed() -> bool:
    try:
        importlib.import_module("anymail.signals")
    except ImportError:
        return False
    return True


def _webhook_secret_errors() -> list[checks.CheckMessage]:
    secret = (getattr(settings, "ANYMAIL", None) or {}).get("WEBHOOK_SECRET") or getattr(
        settings, "ANYMAIL_WEBHOOK_SECRET", None
    )
    if secret and all(isinstance(s, str) and ":" in s for s in _as_list(secret)):
        return []
    return [
        checks.Error(
            _(
                'BULK_EMAIL["ESP_WEBHOOKS"] is on, but ANYMAIL["WEBHOOK_SECRET"] is not a '
                '"user:password" pair: anyone could post forged bounces and complaints.'
            ),
            hint=_(
                "Set it (the site reads ANYMAIL_WEBHOOK_SECRET from the environment) and put "
                "it in each ESP's webhook URL as https://user:password@host/...; see "
                "docs/feedback.md."
            ),
            id="bulk_email.E014",
        )
    ]


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def _anymail_url_warnings() -> list[checks.CheckMessage]:
    try:
        reverse(ANYMAIL_TRACKING_URL)
    except NoReverseMatch:
        return [
            checks.Warning(
                _(
                    'BULK_EMAIL["ESP_WEBHOOKS"] is on, but anymail\'s webhook URLs are not in the '
                    "URLconf: no ESP can reach them."
                ),
                hint=_('Add path("webhooks/anymail/", include("anymail.urls")) to your urls.py.'),
                id="bulk_email.W013",
            )
        ]
    return []


QUEUE_NAME = re.compile(r"[A-Za-z0-9_.:@-]{1,200}")
TASK_NAMES = tuple(f"bulk_email.tasks.{name}" for name in ("fan_out", "send_batch", "dispatch"))


@for_bulk_email
def check_queues(**kwargs) -> list[checks.CheckMessage]:
    """QUEUE and LARGE_QUEUE are the queues the docs tell operators to start workers on.
    bulk_email names one of them for each of its tasks; a beat entry that names another
    queue for ``dispatch`` still wins, and scheduled sends would wait for a worker that
    never comes."""
    queues = [app_settings.get("QUEUE"), app_settings.get("LARGE_QUEUE")]
    bad = [q for q in queues if not isinstance(q, str) or not QUEUE_NAME.fullmatch(q)]
    if bad:
        return [
            checks.Error(
                _('BULK_EMAIL["QUEUE"] and ["LARGE_QUEUE"] must be queue names; got %(bad)r.')
                % {"bad": bad[0]},
                hint=_('Letters, digits and _ . : @ - only, e.g. "default" and "large".'),
                id="bulk_email.E020",
            )
        ]
    return [
        _beat_queue_warning(entry, queue, queues)
        for entry, queue in _beat_queues()
        if queue not in queues
    ]


def _beat_queues() -> list[tuple[str, object]]:
    """(entry name, queue) of each CELERY_BEAT_SCHEDULE entry of a bulk_email task that
    names a queue in its options."""
    schedule = getattr(settings, "CELERY_BEAT_SCHEDULE", None)
    if not isinstance(schedule, dict):
        return []
    return [
        (name, entry["options"]["queue"])
        for name, entry in schedule.items()
        if isinstance(entry, dict)
        and entry.get("task") in TASK_NAMES
        and isinstance(entry.get("options"), dict)
        and "queue" in entry["options"]
    ]


def _beat_queue_warning(entry: str, queue, queues: list) -> checks.CheckMessage:
    return checks.Warning(
        _(
            "CELERY_BEAT_SCHEDULE[%(entry)r] sends its bulk_email task to the queue %(queue)r, "
            'which is neither BULK_EMAIL["QUEUE"] nor ["LARGE_QUEUE"] (%(queues)s).'
        )
        % {"entry": entry, "queue": queue, "queues": ", ".join(queues)},
        hint=_(
            "Drop the entry's queue option (bulk_email routes its own tasks) or start a "
            "worker on that queue."
        ),
        id="bulk_email.W020",
    )


@for_bulk_email
def check_sender_settings(**kwargs) -> list[checks.CheckMessage]:
    """TEMPLATE_BY_* map keys to a template name; FROM_ADDRESSES_BY_* to a non-empty list of
    addresses, each usable in a From header."""
    problems = []
    for name in ("TEMPLATE_BY_ORG", "TEMPLATE_BY_COURSE"):
        value = app_settings.get(name)
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            problems.append(
                _('BULK_EMAIL["%(name)s"] must map keys to template names.') % {"name": name}
            )
    for name in ("FROM_ADDRESSES_BY_ORG", "FROM_ADDRESSES_BY_COURSE"):
        value = app_settings.get(name)
        lists = value.values() if isinstance(value, dict) else [None]
        if not all(isinstance(v, list) and v and all(map(_usable_from, v)) for v in lists):
            problems.append(
                _('BULK_EMAIL["%(name)s"] must map keys to non-empty lists of addresses.')
                % {"name": name}
            )
    hint = _('e.g. {"MITx": "mitx-branded"} and {"MITx": ["MITx <news@mitx.example>"]}')
    return [checks.Error(problem, hint=hint, id="bulk_email.E021") for problem in problems]


def _usable_from(address) -> bool:
    if not isinstance(address, str):
        return False
    try:
        rendering.split_from(address)
    except BulkEmailError:
        return False
    return "@" in address


@for_bulk_email
def check_email_template_files(**kwargs) -> list[checks.CheckMessage]:
    """The template files (a project may override them) need their body slot, as database
    templates do: without it every message would go out without its body."""
    try:
        rendering.file_template()
    except EmailTemplateError as problem:
        hint = _("Put {{message_body}} once in each file, e.g. <div>{{message_body}}</div>.")
        return [checks.Error(str(problem), hint=hint, id="bulk_email.E015")]
    return []


@for_bulk_email
def check_feedback_mailbox(**kwargs) -> list[checks.CheckMessage]:
    """FEEDBACK_IMAP / FEEDBACK_MAILDIR, when either is set: what poll_feedback would refuse.
    A Maildir not there is a warning only: the web servers may not see the poller's disk."""
    if not (app_settings.get("FEEDBACK_IMAP") or app_settings.get("FEEDBACK_MAILDIR")):
        return []
    hint = _("See docs/feedback.md (Polling a mailbox).")
    only_maildir = not app_settings.get("FEEDBACK_IMAP")
    return [
        checks.Warning(problem, hint=hint, id="bulk_email.W030")
        if only_maildir
        else checks.Error(problem, hint=hint, id="bulk_email.E030")
        for problem in mailboxes.configuration_problems()
    ]


@for_bulk_email
def check_unknown_names(**kwargs) -> list[checks.CheckMessage]:
    return [
        checks.Warning(
            _('BULK_EMAIL["%(name)s"] is not a bulk_email setting (a typo?).') % {"name": name},
            id="bulk_email.W001",
        )
        for name in app_settings.unknown_names()
    ]


def register() -> None:
    for check in (
        check_lms_backend,
        check_numbers,
        check_schedule_horizon,
        check_html_nesting,
        check_redis_key_prefix,
        check_site_url,
        check_dkim,
        check_queues,
        check_feedback_domain,
        check_esp_webhooks,
        check_email_template_files,
        check_sender_settings,
        check_feedback_mailbox,
        check_unknown_names,
    ):
        checks.register(check, "bulk_email")
