"""The Email tab's counts: counted by a worker, cached under the course's generation
(bulk_email/audience.py), read by the tab's endpoints in a few milliseconds.

A course of a million learners takes a couple of seconds to count (one pass over its
enrollments, recipients.audience_histogram); the tab's page and endpoints must answer at
once. So an endpoint never counts: it returns what is cached for the course's current
generation, or None after asking a worker, once, to count (the caller's ``schedule``), and
the tab asks again shortly. Any change to who the course reaches replaces the generation,
so a count is never served past the change (docs/performance.md)."""

import uuid
from collections.abc import Callable

from .. import app_settings, audience, recipients

# A count asked for and not done within this (a lost message, a worker that died) is asked
# for again by the next request.
COUNTING_LEASE_SECONDS = 30

# schedule(course_id, generation, sender_id) or schedule(course_id, generation, sender_id, key).
Schedule = Callable[..., None]


def _key(kind: str, course_id: str, generation: str, *more) -> str:
    parts = [uuid.uuid5(uuid.NAMESPACE_URL, course_id).hex, generation, *map(str, more)]
    return f"bulk_email:audience:{kind}:" + ":".join(parts)


def _cached_or_scheduled(key: str, schedule: Callable[[], None]):
    """The cached value; None after scheduling its count, unless one is under way. Read
    again after scheduling: a site whose tasks run at once (celery's ``task_always_eager``)
    has it then."""
    found = audience.cache().get(key)
    if found is None and audience.cache().add(key + ":counting", 1, COUNTING_LEASE_SECONDS):
        schedule()
        found = audience.cache().get(key)
    return found


def _keep(key: str, value) -> None:
    audience.cache().set(key, value, timeout=app_settings.get("AUDIENCE_CACHE_SECONDS"))


# --- Group counts and the de-duplicated total --------------------------------------------------


def histogram(
    *, course_id: str, schedule: Schedule, sender_id: int | None = None
) -> recipients.AudienceHistogram | None:
    """The course's cached histogram (without a sender); None while a worker counts it (and
    places ``sender_id``, who asked)."""
    generation = audience.generation(course_id=course_id)
    key = _key("histogram", course_id, generation)
    return _cached_or_scheduled(key, lambda: schedule(course_id, generation, sender_id))


def count_histogram(*, course_id: str, generation: str, sender_id: int | None = None) -> None:
    """The worker's side: count the course and keep it under the generation it was asked
    for (a change meanwhile has replaced that generation: nobody reads this one again);
    place the sender who asked, whose next request then only reads the cache."""
    counted = recipients.audience_histogram(course_id=course_id)
    if sender_id is not None:
        _sender_place(course_id, generation, sender_id, counted.keys)
    _keep(_key("histogram", course_id, generation), counted)


def _sender_place(course_id, generation, sender_id, keys) -> tuple[frozenset, frozenset]:
    """The sender's place (recipients.sender_place), cached: its two queries cost little to
    run but 50-100 ms to plan on a busy machine, more than the rest of a request."""
    key = _key("sender", course_id, generation, sender_id)
    place = audience.cache().get(key)
    if place is None:
        place = recipients.sender_place(course_id=course_id, sender_id=sender_id, keys=keys)
        _keep(key, place)
    return place


def _for_sender(course_id, sender_id, schedule) -> recipients.AudienceHistogram | None:
    found = histogram(course_id=course_id, schedule=schedule, sender_id=sender_id)
    if found is None or sender_id is None:
        return found
    generation = audience.generation(course_id=course_id)
    counted, own = _sender_place(course_id, generation, sender_id, found.keys)
    return found.moved(counted_as=counted, own=own)


def group_counts(*, course_id: str, sender_id: int | None, schedule: Schedule) -> dict | None:
    """How many people each offered group reaches, by key; None while being counted."""
    found = _for_sender(course_id, sender_id, schedule)
    return None if found is None else found.counts()


def count_recipients(
    *, course_id: str, sender_id: int | None, target_keys: list[str], schedule: Schedule
) -> int | None:
    """How many people the groups reach together, each once; None while being counted."""
    found = _for_sender(course_id, sender_id, schedule)
    return None if found is None else found.total(target_keys)


# --- Who a group leaves out, and why (asked for one group at a time) --------------------------


def group_breakdown(
    *, course_id: str, sender_id: int | None, key: str, schedule: Schedule
) -> recipients.Breakdown | None:
    """The group's cached breakdown; None while a worker counts it."""
    generation = audience.generation(course_id=course_id)
    cache_key = _key("breakdown", course_id, generation, sender_id, key)
    return _cached_or_scheduled(cache_key, lambda: schedule(course_id, generation, sender_id, key))


def count_breakdown(*, course_id: str, generation: str, sender_id: int | None, key: str) -> None:
    counted = recipients.group_breakdown(course_id=course_id, sender_id=sender_id, key=key)
    _keep(_key("breakdown", course_id, generation, sender_id, key), counted)
