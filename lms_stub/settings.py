"""Django settings for the LMS-style site that hosts bulk_email.

Everything a deployment changes comes from the environment (12-factor); the defaults are the
embedded ones `make run` needs on a bare machine: SQLite in WAL mode under var/ and kombu's
filesystem broker under var/, so nothing has to be installed to try the product. Security
fails closed: without BULK_EMAIL_ENV=development (which `make run`, `make demo` and the tests
set) start-up stops unless SECRET_KEY and ALLOWED_HOSTS are real, and DEBUG stays off.
"""

import json
import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# --- Fail closed ------------------------------------------------------------------------------
# Production unless told otherwise: a site started without configuration must not run with a
# published key, debug pages or any Host header. `make run`, `make demo`, the tests and the
# benchmark say BULK_EMAIL_ENV=development; nothing else relaxes what follows.
DEVELOPMENT = os.environ.get("BULK_EMAIL_ENV", "").strip().lower() == "development"
GENERATE_KEY_HINT = (
    "python -c 'from django.core.management.utils import get_random_secret_key as k; print(k())'"
)
# Keys that were published (this repository's old default, the deploy examples' placeholder):
# anyone can sign unsubscribe links, sessions and password resets with them.
PUBLISHED_SECRET_KEYS = {
    "dev-only-insecure-key-change-me-in-production",
    "change-me",
    "changeme",
    "secret",
    "secret-key",
}


def is_placeholder_secret_key(key: str) -> bool:
    lowered = key.lower()
    return (
        lowered in PUBLISHED_SECRET_KEYS
        or "change-me" in lowered
        or "changeme" in lowered
        or lowered.startswith("django-insecure-")
    )


def development_secret_key(path: Path) -> str:
    """A key made once per checkout and kept under var/, so that sessions and links in the
    Mailbox survive a restart and every local process (site, worker) signs alike."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        draft.write_text(get_random_secret_key())
        draft.chmod(0o600)
        try:
            os.link(draft, path)  # atomic: processes starting together keep the first key
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def secret_key_from_env() -> str:
    key = os.environ.get("SECRET_KEY", "").strip()
    if DEVELOPMENT:
        return key or development_secret_key(VAR_DIR / "secret_key")
    if not key:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random value (generate one with "
            f"{GENERATE_KEY_HINT}); on a development machine set BULK_EMAIL_ENV=development."
        )
    if is_placeholder_secret_key(key):
        raise ImproperlyConfigured(
            "SECRET_KEY is a published placeholder: anyone could sign this site's links and "
            f"sessions. Set SECRET_KEY to a long random value (generate one with "
            f"{GENERATE_KEY_HINT})."
        )
    return key


def debug_from_env() -> bool:
    debug = env_bool("DEBUG", False)
    if debug and not DEVELOPMENT:
        raise ImproperlyConfigured(
            "DEBUG=true shows settings and code to anyone who triggers an error: it is for "
            "development only. Unset DEBUG, or set BULK_EMAIL_ENV=development on a "
            "development machine."
        )
    return debug


def allowed_hosts_from_env() -> list[str]:
    hosts = [host.strip() for host in os.environ.get("ALLOWED_HOSTS", "").split(",")]
    hosts = [host for host in hosts if host]
    if hosts:
        return hosts
    if DEVELOPMENT:
        return ["127.0.0.1", "localhost", "[::1]"]
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is not set: name the site's host names, comma-separated "
        "(ALLOWED_HOSTS=lms.example.com)."
    )


def proxy_ssl_header_from_env() -> tuple[str, str] | None:
    """SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto: the TLS-terminating proxy's header that says
    a request came over https (only behind a proxy that always sets it)."""
    header = os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip()
    if not header:
        return None
    return ("HTTP_" + header.upper().replace("-", "_"), "https")


DEBUG = debug_from_env()
SECRET_KEY = secret_key_from_env()
ALLOWED_HOSTS = allowed_hosts_from_env()
# HTTPS only outside development; each can be turned off from the environment, e.g. behind a
# proxy that redirects to https itself (SECURE_SSL_REDIRECT=false).
HTTPS_BY_DEFAULT = not DEVELOPMENT
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS_BY_DEFAULT)
SECURE_PROXY_SSL_HEADER = proxy_ssl_header_from_env()
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HTTPS_BY_DEFAULT)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", HTTPS_BY_DEFAULT)
# HSTS is a promise browsers keep for its whole duration: opt in, starting small.
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS") or 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# The site's name, as Open edX's PLATFORM_NAME (email templates' {platform_name}).
PLATFORM_NAME = os.environ.get("PLATFORM_NAME", "LMS stub")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ckeditor",
    "csp",
    "lms_stub",
    "bulk_email",
    "anymail",  # ESP webhooks at /webhooks/anymail/ (docs/feedback.md)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language of each request: the language cookie (set by the top bar's selector and at
    # sign-in from the profile), then Accept-Language, then LANGUAGE_CODE (docs/languages.md).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# --- Content-Security-Policy (django-csp) -----------------------------------------------------
# Every page: nothing runs but this site's own script files (no inline script, no eval), no
# plugin, no <base> rewrite, forms post only here, no other site may frame a page. A flaw in
# the bundled CKEditor 4 (end of life) or a pasted payload then has nowhere to go. Views
# widen it where they must, by name (lms_stub/views.py: the instructor dashboard).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        # CKEditor's editing frame (about:blank) and the Mailbox's message frame are this
        # site's; the Email tab's viewer is a srcdoc frame, which inherits this policy.
        "frame-src": [SELF],
        "child-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [SELF],
    }
}

ROOT_URLCONF = "lms_stub.urls"
WSGI_APPLICATION = "lms_stub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "lms_stub.context_processors.site",
            ],
        },
    },
]


def database_from_env() -> dict:
    """DATABASE_URL (PostgreSQL in production and tests) or the embedded SQLite in WAL mode."""
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
    # Persistent connections (checked before reuse): a worker opens one per process, not one
    # per batch task (a PostgreSQL backend started and torn down every 500 messages).
    max_age = int(os.environ.get("CONN_MAX_AGE", "60"))
    config = dj_database_url.parse(url, conn_max_age=max_age, conn_health_checks=True)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets the web process read while the worker writes; IMMEDIATE transactions take
        # the write lock up front, so two processes wait for each other instead of failing
        # with "database is locked" half-way through a transaction.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    return config


DATABASES = {"default": database_from_env()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
# The languages shipped complete (docs/languages.md says how to add one). Names in their own
# language: a person looking for theirs reads it in the selector whatever the page's language.
LANGUAGES = [("en", "English"), ("fr", "Français"), ("ar", "العربية")]
# The site's own catalog (lms_stub and the project templates); bulk_email carries its own.
LOCALE_PATHS = [BASE_DIR / "lms_stub" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"

# django-ckeditor warns that the CKEditor 4 it bundles is out of support. DESIGN.md chose it;
# everything the composer produces is sanitized server-side with nh3 before it is stored or
# sent, so the editor is never trusted. The decision is written in the README.
SILENCED_SYSTEM_CHECKS = ["ckeditor.W001"]

# The Email tab's composer (bulk_email.forms picks the "bulk_email" entry when a site has one).
# A toolbar that says what email can hold, with Source for raw HTML; the content filter mirrors
# the server's sanitizer (bulk_email.rendering), so that the editor does not show what will be
# stripped. The server sanitizes whatever arrives anyway.
CKEDITOR_EMAIL_ATTRIBUTES = (
    "title,align,dir,lang,width,height,border,cellpadding,cellspacing,bgcolor,summary,"
    "colspan,rowspan,valign,nowrap,scope,span,color,face,size,start,type"
)
CKEDITOR_CONFIGS = {
    "bulk_email": {
        "toolbar": [
            ["Format", "Bold", "Italic", "Underline", "Strike", "RemoveFormat"],
            ["NumberedList", "BulletedList", "Blockquote", "JustifyLeft", "JustifyCenter"],
            ["Link", "Unlink", "Image", "Table", "HorizontalRule", "SpecialChar"],
            ["Undo", "Redo", "Source"],
        ],
        "height": 260,
        "width": "100%",
        "title": "Message",
        "removePlugins": "exportpdf",
        # No uploads here (no upload URL is configured), and their tabs' file-input frames start
        # from a javascript: URL and an inline script, which the CSP refuses.
        "removeDialogTabs": "link:upload;image:Upload",
        "allowedContent": (
            "h1 h2 h3 h4 h5 h6 p div span blockquote pre code small center cite q abbr del ins"
            " strong em b i u s strike sub sup br hr ul ol li dl dt dd figure figcaption"
            " table caption thead tbody tfoot tr th td col colgroup font"
            f"[{CKEDITOR_EMAIL_ATTRIBUTES}]{{*}}(*);"
            " a[!href,target,name,title]{*}(*); img[!src,alt,width,height,border,title]{*}(*)"
        ),
    }
}

# bulk_email's JSON endpoints answer a CSRF refusal in their JSON error shape; every other page
# gets Django's (docs/email_tab.md).
CSRF_FAILURE_VIEW = "bulk_email.http.csrf_failure"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# --- Mail -------------------------------------------------------------------------------------
# Any SMTP server; the default is the local sink that the development site runs on port 1025.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "1025"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "30"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "no-reply@lms.example.com")

# The development Mailbox page (/mailbox/) shows what the local SMTP sink received (it saves
# each message under MAILBOX_DIR). Development only: off unless DEBUG or MAILBOX_ENABLED.
MAILBOX_DIR = Path(os.environ.get("MAILBOX_DIR", VAR_DIR / "mail"))
MAILBOX_ENABLED = env_bool("MAILBOX_ENABLED", DEBUG)
MAILBOX_PAGE_SIZE = 50  # messages a Mailbox page lists; a demo send makes thousands

# --- Celery -----------------------------------------------------------------------------------
# Redis in production and tests (CELERY_BROKER_URL); otherwise kombu's filesystem transport,
# a real broker that needs no server: messages are files under var/broker/.
# kombu warns "No hostname was supplied" on every connection to a URL without a host; the
# filesystem transport has none and ignores it, so the embedded default names one.
EMBEDDED_BROKER_URL = "filesystem://localhost/"


def broker_from_env() -> str:
    """CELERY_BROKER_URL, empty or unset meaning the embedded filesystem broker (as an empty
    DATABASE_URL means SQLite; an empty one used to mean celery's default, AMQP on localhost)."""
    return os.environ.get("CELERY_BROKER_URL") or EMBEDDED_BROKER_URL


CELERY_BROKER_URL = broker_from_env()
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    # A message a dead worker took is handed out again after this long. Batches are claimed
    # in the database, so an early redelivery of a slow batch costs nothing but a no-op.
    else {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "900"))}
)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
# bulk_email's dispatcher: due scheduled sends, and recovery of work lost to a crash.
CELERY_BEAT_SCHEDULE = {
    "bulk-email-dispatch": {
        "task": "bulk_email.tasks.dispatch",
        "schedule": float(os.environ.get("DISPATCH_SECONDS", "5")),
    },
    # Retention: does nothing unless BULK_EMAIL["RETENTION_DAYS"] is set.
    "bulk-email-purge": {"task": "bulk_email.tasks.purge_sends", "schedule": 24 * 3600.0},
}
# bulk_email's feedback poller from beat instead of cron (docs/feedback.md): every
# BULK_EMAIL_FEEDBACK_POLL_SECONDS when set; an overlapping run does nothing.
if os.environ.get("BULK_EMAIL_FEEDBACK_POLL_SECONDS"):
    CELERY_BEAT_SCHEDULE["bulk-email-poll-feedback"] = {
        "task": "bulk_email.tasks.poll_feedback",
        "schedule": float(os.environ["BULK_EMAIL_FEEDBACK_POLL_SECONDS"]),
    }

# --- bulk_email -------------------------------------------------------------------------------
# Numbers an operator (or a test starting workers) may tune from the environment.
BULK_EMAIL_ENV_NUMBERS = (
    "EMAILS_PER_TASK",
    "BATCH_LEASE_SECONDS",
    "PENDING_REQUEUE_SECONDS",
    "RETRY_DELAY",
    "RETRY_MAX_DELAY",
    "PROGRESS_CHECKPOINT_SECONDS",
    "MAX_RETRIES",
    "MAX_SEND_RATE",
    "LARGE_SEND_THRESHOLD",
    "MAX_MESSAGES_PER_CONNECTION",
    "RETENTION_DAYS",
)


def bulk_email_env_numbers() -> dict:
    """BULK_EMAIL_<NAME>=<number> from the environment, for the names above."""
    found = {}
    for name in BULK_EMAIL_ENV_NUMBERS:
        value = os.environ.get(f"BULK_EMAIL_{name}", "")
        if value:
            found[name] = float(value) if "." in value else int(value)
    return found


def dkim_from_env() -> dict | None:
    """DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE (PEM) turn signing on;
    DKIM_ED25519_SELECTOR and DKIM_ED25519_PRIVATE_KEY_FILE add the Ed25519 signature."""
    domain = os.environ.get("DKIM_DOMAIN")
    if not domain:
        return None
    config = {
        "domain": domain,
        "selector": os.environ.get("DKIM_SELECTOR", "bulk"),
        "private_key": Path(os.environ["DKIM_PRIVATE_KEY_FILE"]).read_text(),
    }
    if ed25519_key_file := os.environ.get("DKIM_ED25519_PRIVATE_KEY_FILE"):
        config["ed25519_selector"] = os.environ.get("DKIM_ED25519_SELECTOR", "bulk-ed25519")
        config["ed25519_private_key"] = Path(ed25519_key_file).read_text()
    return config


def anymail_from_env() -> dict:
    """django-anymail's webhook settings, each only when the environment gives it: anymail
    takes an empty WEBHOOK_SECRET as none (it then warns and lets anyone post) and refuses an
    empty signing key. bulk_email's check E014 refuses ESP_WEBHOOKS without the secret."""
    names = {
        "WEBHOOK_SECRET": "ANYMAIL_WEBHOOK_SECRET",  # "user:password", in each ESP's URL
        "MAILGUN_WEBHOOK_SIGNING_KEY": "MAILGUN_WEBHOOK_SIGNING_KEY",
    }
    return {key: os.environ[var].strip() for key, var in names.items() if os.environ.get(var)}


ANYMAIL = anymail_from_env()

BULK_EMAIL = {
    "LMS_BACKEND": "lms_stub.bulk_email_backend.StubLMSBackend",
    "DKIM": dkim_from_env(),
    "SITE_URL": SITE_URL,
    "DEFAULT_FROM_EMAIL": DEFAULT_FROM_EMAIL,
    # bounces+TOKEN@ and unsubscribe+TOKEN@ this domain (VERP, the mailto); unset: neither.
    "FEEDBACK_DOMAIN": os.environ.get("BULK_EMAIL_FEEDBACK_DOMAIN") or None,
    # Bounces and complaints from an ESP's webhooks (anymail); needs ANYMAIL_WEBHOOK_SECRET.
    "ESP_WEBHOOKS": env_bool("BULK_EMAIL_ESP_WEBHOOKS", False),
    # The mailbox poll_feedback reads: an IMAP folder (a JSON object: host, user, password,
    # ... as docs/feedback.md lists) or a Maildir's path.
    "FEEDBACK_IMAP": json.loads(os.environ.get("BULK_EMAIL_FEEDBACK_IMAP") or "null"),
    "FEEDBACK_MAILDIR": os.environ.get("BULK_EMAIL_FEEDBACK_MAILDIR") or None,
    **bulk_email_env_numbers(),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # flufl.bounce logs each of its ~17 detectors it runs at INFO, for every message:
    # noise in the mail log, and a third of the feedback service's time.
    "loggers": {"flufl.bounce": {"level": "WARNING"}},
}
