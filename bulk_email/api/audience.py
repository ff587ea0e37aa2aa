"""The Email tab's counts: counted by a worker, cached under the course's generation
(bulk_email/audience.py), read by the tab's endpoints in a few milliseconds.

A course of a million learners takes a couple of seconds to count (one pass over its
enrollments, histogram.audience_histogram); the tab's page and endpoints must answer at
once. So an endpoint never counts: it returns what is cached for the course's current
generation, or None after asking a worker, once, to count (the caller's ``schedule``), and
the tab asks again shortly. Any change to who the course reaches replaces the generation,
so a count is never served past the change (docs/performance.md).

A course whose tab is in use is kept warm: recounted by a worker as soon as a change commits
and again before its counts expire, so the next page finds them there rather than waiting a
count of a million learners."""

import math
import time
import uuid
from collections.abc import Callable

from .. import app_settings, audience, breakdown
from ..histogram import AudienceHistogram, audience_histogram, sender_place

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


def _histogram_key(course_id: str, generation: str) -> str:
    return _key("histogram", course_id, generation)


# --- Group counts and the de-duplicated total --------------------------------------------------


def histogram(
    *, course_id: str, schedule: Schedule, sender_id: int | None = None
) -> AudienceHistogram | None:
    """The course's cached histogram (without a sender); None while a worker counts it (and
    places ``sender_id``, who asked)."""
    _watch(course_id, sender_id)
    generation = audience.generation(course_id=course_id)
    key = _histogram_key(course_id, generation)
    return _cached_or_scheduled(key, lambda: schedule(course_id, generation, sender_id))


def count_histogram(*, course_id: str, generation: str, sender_id: int | None = None) -> None:
    """The worker's side: count the course and keep it under the generation it was asked
    for (a change meanwhile has replaced that generation: nobody reads this one again);
    place the sender who asked and the course's other recent senders, whose next request
    then only reads the cache (placed before the histogram is kept: whoever finds it finds
    their place too)."""
    counted = audience_histogram(course_id=course_id)
    for sender in _senders_to_place(course_id, sender_id):
        _sender_place(course_id, generation, sender, counted.keys)
    key = _histogram_key(course_id, generation)
    _keep(key, counted)
    # Fresh for three quarters of its life: recounted in the last quarter if still in use.
    fresh_seconds = app_settings.get("AUDIENCE_CACHE_SECONDS") * 3 // 4
    audience.cache().set(_key("fresh", course_id, generation), 1, timeout=fresh_seconds)
    audience.cache().delete(key + ":counting")  # done: a recount may start


def _sender_place(course_id, generation, sender_id, keys) -> tuple[frozenset, frozenset]:
    """The sender's place (histogram.sender_place), cached: its two queries cost little to
    run but 50-100 ms to plan on a busy machine, more than the rest of a request."""
    key = _key("sender", course_id, generation, sender_id)
    place = audience.cache().get(key)
    if place is None:
        place = sender_place(course_id=course_id, sender_id=sender_id, keys=keys)
        _keep(key, place)
    return place


def _for_sender(course_id, sender_id, schedule) -> AudienceHistogram | None:
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
) -> breakdown.Breakdown | None:
    """The group's cached breakdown; None while a worker counts it."""
    generation = audience.generation(course_id=course_id)
    cache_key = _key("breakdown", course_id, generation, sender_id, key)
    return _cached_or_scheduled(cache_key, lambda: schedule(course_id, generation, sender_id, key))


def count_breakdown(*, course_id: str, generation: str, sender_id: int | None, key: str) -> None:
    counted = breakdown.group_breakdown(course_id=course_id, sender_id=sender_id, key=key)
    _keep(_key("breakdown", course_id, generation, sender_id, key), counted)


# --- Counts kept warm for the courses in use ------------------------------------------------------
# The map of the courses in use is one cache entry, read and written whole: two processes
# adding a course at once may drop one, which costs that course one count waited for at its
# next page (which adds it again), never a wrong count.

WATCHED_KEY = "bulk_email:audience:watched"
# The staff placed by each count of a course: the latest who opened its tab (a handful).
MOST_SENDERS_PLACED = 10


def _watch(course_id: str, sender_id: int | None) -> None:
    """Note the course as in use, and who asked, for AUDIENCE_WATCH_SECONDS."""
    _note(WATCHED_KEY, course_id)
    if sender_id is not None:
        _note(_key("senders", course_id, ""), sender_id, most=MOST_SENDERS_PLACED)


def _note(key: str, member, *, most: int | None = None) -> None:
    """``member`` into the map ``key`` of members and until when they count (each member
    written at most twice per AUDIENCE_WATCH_SECONDS; the ``most`` latest kept)."""
    seconds = app_settings.get("AUDIENCE_WATCH_SECONDS")
    now = time.time()
    noted = audience.cache().get(key) or {}
    if noted.get(member, 0) - now > seconds / 2:
        return
    noted = {each: until for each, until in noted.items() if until > now}
    noted[member] = now + seconds
    latest = sorted(noted.items(), key=lambda item: item[1], reverse=True)[:most]
    audience.cache().set(key, dict(latest), timeout=seconds)


def _still_noted(key: str) -> list:
    now = time.time()
    noted = audience.cache().get(key) or {}
    return sorted(member for member, until in noted.items() if until > now)


def watched_courses() -> list[str]:
    """The courses whose Email tab asked for counts within AUDIENCE_WATCH_SECONDS."""
    return _still_noted(WATCHED_KEY)


def _senders_to_place(course_id: str, sender_id: int | None) -> list[int]:
    recent = _still_noted(_key("senders", course_id, ""))
    asker = [] if sender_id is None or sender_id in recent else [sender_id]
    return asker + recent[: MOST_SENDERS_PLACED - len(asker)]


def _recount_delay(course_id: str) -> float | None:
    """Seconds until the course's recount, or None when one is asked for already. The first
    change in AUDIENCE_RECOUNT_SECONDS is recounted at once; the later ones wait for the end
    of that window, where one recount counts them all (across processes)."""
    seconds = app_settings.get("AUDIENCE_RECOUNT_SECONDS")
    now = time.time()
    window = _key("recount", course_id, "")
    if audience.cache().add(window, now + seconds, seconds):
        return 0.0
    remaining = max((audience.cache().get(window) or now) - now, 0.0)
    # The cache's timeouts are whole seconds: the trailing mark outlives the window by < 1 s.
    if audience.cache().add(window + ":trailing", 1, math.ceil(remaining) or 1):
        return remaining
    return None


def _ask_recounts(courses: list[str], schedule: Callable[[str, float], None]) -> list[str]:
    asked = []
    for course in courses:
        delay = _recount_delay(course)
        if delay is not None:
            schedule(course, delay)
            asked.append(course)
    return asked


def _is_fresh(course_id: str, generation: str) -> bool:
    return audience.cache().get(_key("fresh", course_id, generation)) is not None


def recount_after_change(
    *, course_id: str | None, schedule: Callable[[str, float], None]
) -> list[str]:
    """After a change of a course's audience (None: of every course), ask a worker to recount
    the courses it concerns that are in use (``schedule(course, delay_seconds)``); returns
    those asked for (not those whose recount is asked for already)."""
    watched = watched_courses()
    concerned = watched if course_id is None else [c for c in watched if c == course_id]
    return _ask_recounts(concerned, schedule)


def keep_warm(*, schedule: Callable[[str, float], None]) -> list[str]:
    """The dispatcher's side: ask a worker to recount each course in use whose counts are
    missing for its current generation or near their expiry; returns those asked for."""
    due = [
        course
        for course in watched_courses()
        if not _is_fresh(course, audience.generation(course_id=course))
    ]
    return _ask_recounts(due, schedule)


def is_counted(*, course_id: str) -> bool:
    """Whether the counts of the course's current generation are there to read."""
    generation = audience.generation(course_id=course_id)
    return audience.cache().get(_histogram_key(course_id, generation)) is not None


def recount(*, course_id: str) -> bool:
    """The worker's side of a recount: count the course under the generation current now
    (the changes made since it was asked for included), unless that generation's counts are
    fresh or being counted already; True when counted."""
    generation = audience.generation(course_id=course_id)
    if _is_fresh(course_id, generation):
        return False
    lease = _histogram_key(course_id, generation) + ":counting"
    if not audience.cache().add(lease, 1, COUNTING_LEASE_SECONDS):
        return False
    count_histogram(course_id=course_id, generation=generation)
    return True
