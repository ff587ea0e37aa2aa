"""Generations of a course's audience: the key under which its counts are cached.

The Email tab's group counts are computed once by a worker and cached (api/audience.py). A
count must never outlive the change that makes it wrong, so every cached count is filed
under the course's *generation*, a token that any change to who a course reaches replaces:
an enrollment, a cohort or team change (the host LMS sends ``signals.audience_changed``), an
opt-out (the ``Optout`` queryset's own signals) or a suppression (any course: the global
generation). The next request finds nothing under the new generation and counts again;
nothing is ever deleted, the old entries expire.

Generations are replaced after the change commits, never before: a count that started
before the commit files itself under the old generation, which nobody reads any more."""

import uuid

from django.core.cache import caches
from django.db import transaction

from . import app_settings

EVERY_COURSE = ""


def cache():
    return caches[app_settings.get("AUDIENCE_CACHE")]


def _key(course_id: str) -> str:
    # Hashed: a course key may hold characters Memcached refuses in a key.
    return f"bulk_email:audience:generation:{uuid.uuid5(uuid.NAMESPACE_URL, course_id).hex}"


def generation(*, course_id: str) -> str:
    """The course's current generation and the global one, as one token (two keys, one
    round trip). A key seen for the first time gets a token at once."""
    keys = [_key(course_id), _key(EVERY_COURSE)]
    found = cache().get_many(keys)
    for key in keys:
        if key not in found:
            cache().add(key, uuid.uuid4().hex, timeout=None)
            found[key] = cache().get(key)
    return "-".join(str(found[key]) for key in keys)


def bump(*, course_id: str | None = None) -> None:
    """A new generation for the course (``None``: for every course, as a suppression needs),
    once the current transaction commits (at once outside one)."""
    key = _key(course_id or EVERY_COURSE)
    transaction.on_commit(lambda: cache().set(key, uuid.uuid4().hex, timeout=None))
