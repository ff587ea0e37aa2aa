"""The test suite's settings: the site's own (lms_stub/settings.py), run as development.

The site refuses to start outside development without a real SECRET_KEY, so the suite says
what it is before the site's settings are read. The values go into the environment, where the
processes the tests start (workers, `make run`) find them too: every process of a test signs
tokens with the same key."""

import os

os.environ.setdefault("BULK_EMAIL_ENV", "development")
os.environ.setdefault("DEBUG", "true")  # as `make run`: the Mailbox on (pytest turns DEBUG off)
os.environ.setdefault("SECRET_KEY", "tests-only-key-never-used-by-a-site-0123456789abcdefghij")

from lms_stub.settings import *  # noqa: F403

# Each test process its own memory cache; tests of the shared cache (Redis) set their own.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
