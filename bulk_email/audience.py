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

import logging
import uuid
from collections.abc import Callable

from django.core.cache import caches
from django.db import transaction

from . import app_settings

EVERY_COURSE = ""

logger = logging.getLogger(__name__)

# Called with the course id (None: every course) once its new generation is stored: how the
# counts of the courses in use are recounted without waiting for the next page (apps.ready
# connects the worker's side; api/audience.py decides what is recounted).
_after_bump: list[Callable[[str | None], None]] = []


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

    def replace() -> None:
        cache().set(key, uuid.uuid4().hex, timeout=None)
        _tell_after_bump(course_id)

    transaction.on_commit(replace)


def after_bump(callback: Callable[[str | None], None]) -> None:
    """Call ``callback(course_id)`` after every new generation (once, however often asked)."""
    if callback not in _after_bump:
        _after_bump.append(callback)


def _tell_after_bump(course_id: str | None) -> None:
    # What is told only warms a cache: its failure (a broker down) must not fail the change
    # that committed already; the next page counts what was not recounted.
    for callback in _after_bump:
        try:
            callback(course_id)
        except Exception:
            logger.exception("After a change of course %s's audience", course_id or "(every)")


# --- What replaces a generation -------------------------------------------------------------------


def _course_changed(sender, course_id=None, **kwargs) -> None:
    bump(course_id=course_id)


def _every_course_changed(sender, **kwargs) -> None:
    bump()


def _optout_row_changed(sender, instance, **kwargs) -> None:
    bump(course_id=instance.course_id)


def connect() -> None:
    """Listen to every change of who a course reaches (apps.ready calls this): bulk_email's
    own opt-out and suppression signals, any save or delete of those rows (the admin, the
    retirement of a user), and ``signals.audience_changed``, which the host LMS sends."""
    from django.db.models.signals import post_delete, post_save

    from . import signals
    from .models import Optout, Suppression

    uid = "bulk_email.audience"
    signals.opted_out.connect(_course_changed, dispatch_uid=uid + ".opted_out")
    signals.opted_in.connect(_course_changed, dispatch_uid=uid + ".opted_in")
    signals.audience_changed.connect(_course_changed, dispatch_uid=uid + ".audience_changed")
    signals.address_suppressed.connect(_every_course_changed, dispatch_uid=uid + ".suppressed")
    for signal in (post_save, post_delete):
        signal.connect(_optout_row_changed, sender=Optout, dispatch_uid=f"{uid}.optout.{signal}")
        signal.connect(
            _every_course_changed, sender=Suppression, dispatch_uid=f"{uid}.suppression.{signal}"
        )
