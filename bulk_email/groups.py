"""The "Send to" group kinds: one registry of what a group is, what it is called and whom it
reaches. The Email tab, validation, storage and resolution all read it, so a new kind of
group is one ``register_group_kind`` call (and, for its members, what the LMS port offers).

A group's *key* is stored in Target rows and used by the JSON API: the kind's name alone
("learners"), or the name and a value ("track:verified", "cohort:12")."""

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.db.models.functions import Lower, Trim
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .exceptions import InvalidEmailError
from .lms import get_lms
from .models import Optout, Suppression


@dataclass(frozen=True)
class Group:
    """One "Send to" checkbox: ``key`` is stored in Target rows, ``label`` is shown to staff."""

    key: str
    label: str


@dataclass(frozen=True)
class MemberQuery:
    """What a kind's member query is given: the course, who sends, the key's value, the
    eligibility cutoff of learner groups and the keyset page's start."""

    course_id: str
    sender_id: int | None
    value: str
    active_since: datetime.datetime | None
    after_id: int


@dataclass(frozen=True)
class GroupKind:
    """A kind of group: its key's name, whether a value follows it, the groups a course
    offers of it (in display order) and the users a group reaches (a queryset of the user
    model, without duplicates). ``opt_out_applies``: False only where the sender asked for
    the copy themselves (Myself).

    ``everyone``: the people the group is about before the activation and last-login rules
    (members with accounts not activated or gone quiet included), from which the Email tab's
    breakdown counts who is left out and why; it must contain ``members``. None: the same
    as ``members`` (a kind with no such rules)."""

    name: str
    has_value: bool
    offered: Callable[[str], list[Group]]
    members: Callable[[MemberQuery], QuerySet]
    opt_out_applies: bool = True
    everyone: Callable[[MemberQuery], QuerySet] | None = None
    # Whether an enrolled person with these facts is a member (of the group of this value):
    # ``members`` said again in Python, so that a course's learner groups are all counted in
    # one pass over its enrollments (histogram.audience_histogram). None: counted from
    # ``members``, person by person (fine for small groups: the course team, Myself).
    reaches: "Callable[[Facts, str], bool] | None" = None


@dataclass(frozen=True)
class Facts:
    """What decides an enrolled person's groups: one row of the course's enrollment facts
    (``LMSBackend.enrollment_facts``) with bulk_email's own rules evaluated in SQL."""

    track: str
    cohort: int | None
    is_active: bool
    eligible: bool  # the last-login rule (recipients.eligibility_cutoff)
    team: bool
    opted_out: bool
    suppressed: bool

    @property
    def reachable_learner(self) -> bool:
        """Every learner group's rules, the course team aside."""
        return self.is_active and self.eligible and not self.opted_out and not self.suppressed


_kinds: dict[str, GroupKind] = {}


def register_group_kind(kind: GroupKind) -> None:
    """Add (or replace) a kind; kinds are offered in the order they were registered."""
    _kinds[kind.name] = kind


def unregister_group_kind(name: str) -> None:
    _kinds.pop(name, None)


def kind_of(key: str) -> GroupKind:
    return _kinds[split_key(key)[0]]


def split_key(key: str) -> tuple[str, str]:
    """("track", "verified") from "track:verified"; ValueError when malformed."""
    name, _, value = key.partition(":")
    kind = _kinds.get(name)
    if kind is None:
        raise ValueError(f"Unknown target type {name!r}")
    if kind.has_value != bool(value):
        raise ValueError(f"Malformed target {key!r}")
    return name, value


def available_groups(*, course_id: str) -> list[Group]:
    """The groups the Email tab offers for the course, in display order."""
    return [group for kind in _kinds.values() for group in kind.offered(course_id)]


# Far more groups than a course offers (three, its tracks, its cohorts), few enough that a
# script's runaway list is refused before it costs a lookup.
MAX_TARGETS = 1000
# An error names a few wrong keys, each shortened, and counts the rest: its size is bounded
# whatever the request held (10,000 unknown keys once made a 257 KB answer).
UNKNOWN_KEYS_SHOWN = 10
KEY_CHARACTERS_SHOWN = 40


def validate_target_keys(*, course_id: str, keys: Iterable[str]) -> list[str]:
    """The keys, de-duplicated in display order; InvalidEmailError(field="targets") otherwise.

    A key is valid only if the course offers it now: unknown types, malformed keys, another
    course's cohort and the track of a single-track course are all refused."""
    chosen = list(keys)
    if not chosen:
        raise InvalidEmailError(_("Choose at least one group to send to."), field="targets")
    if len(chosen) > MAX_TARGETS:
        raise InvalidEmailError(
            _("Choose at most %(max)d groups (this has %(count)s).")
            % {"max": MAX_TARGETS, "count": number_format(len(chosen), force_grouping=True)},
            field="targets",
        )
    offered = {group.key: group for group in available_groups(course_id=course_id)}
    unknown = [key for key in chosen if key not in offered]
    if unknown:
        raise InvalidEmailError(
            _("Not a group of this course: %(keys)s.") % {"keys": some_keys(unknown)},
            field="targets",
        )
    return [key for key in offered if key in chosen]


def some_keys(keys: list) -> str:
    """The first few keys, each shortened, and how many more: "a, b and 9,990 more"."""
    shown = ", ".join(shortened(str(key)) for key in keys[:UNKNOWN_KEYS_SHOWN])
    rest = len(keys) - UNKNOWN_KEYS_SHOWN
    if rest <= 0:
        return shown
    return _("%(shown)s and %(rest)s more") % {
        "shown": shown,
        "rest": number_format(rest, force_grouping=True),
    }


def shortened(key: str) -> str:
    return key if len(key) <= KEY_CHARACTERS_SHOWN else key[: KEY_CHARACTERS_SHOWN - 1] + "…"


def group_members(
    *,
    course_id: str,
    sender_id: int | None,
    key: str,
    active_since: datetime.datetime | None,
    after_id: int = 0,
    suppressed: bool = False,
) -> QuerySet:
    """The users one group reaches, with an id above ``after_id`` (unordered, no duplicates),
    opt-outs removed where they apply, suppressed addresses removed from every group. With
    ``suppressed``: the group's members left out for their address alone (the send counts
    them as skipped: suppressed).

    ``after_id`` is handed to the LMS too, which bounds its membership tables with it: that
    keeps a page deep into a large course as cheap as the first (see ``LMSBackend``)."""
    try:
        name, value = split_key(key)
    except (ValueError, AttributeError):
        raise InvalidEmailError(
            _("Malformed target %(key)r.") % {"key": key}, field="targets"
        ) from None
    kind = _kinds[name]
    query = MemberQuery(course_id, sender_id, value, active_since, after_id)
    # The port's bound is an optimisation a backend may skip; this one is the rule.
    members = kind.members(query).filter(pk__gt=after_id)
    members = _only_suppressed(members) if suppressed else _not_suppressed(members)
    return _not_opted_out(members, course_id, after_id) if kind.opt_out_applies else members


def _not_opted_out(users: QuerySet, course_id: str, after_id: int) -> QuerySet:
    return users.filter(~opted_out(course_id, after_id))


def opted_out(course_id: str, after_id: int = 0) -> Exists:
    """Whether the outer query's user opted out of the course."""
    # The redundant ``user_id > after_id`` lets the anti-join start at the page too.
    optouts = Optout.objects.filter(
        course_id=course_id, user_id=OuterRef("pk"), user_id__gt=after_id
    )
    return Exists(optouts)


def suppressed() -> Exists:
    """Whether the outer query's user's address is suppressed."""
    return Exists(_suppressions_of_outer_user())


def breakdown_parts(*, course_id: str, sender_id: int | None, key: str, active_since):
    """What a group's breakdown counts over: everyone the group is about, the members the
    activation and last-login rules keep, and whether opt-outs apply."""
    name, value = split_key(key)
    kind = _kinds[name]
    query = MemberQuery(course_id, sender_id, value, active_since, 0)
    members = kind.members(query)
    everyone = kind.everyone(query) if kind.everyone else members
    return everyone, members, kind.opt_out_applies


def _suppressions_of_outer_user() -> QuerySet:
    """The Suppression row of the outer query's user: its address is stored normalized
    (``Suppression.normalize``), so the user's address is compared the same way, in SQL,
    and each user costs one probe of the unique address index."""
    email = get_user_model().get_email_field_name()
    return Suppression.objects.filter(address=Lower(Trim(OuterRef(email))))


def _only_suppressed(users: QuerySet) -> QuerySet:
    return users.filter(Exists(_suppressions_of_outer_user()))


def _not_suppressed(users: QuerySet) -> QuerySet:
    # No exception, not even Myself: an address that bounced for good cannot receive a
    # test copy either, and one whose owner complained must not get more mail.
    return users.filter(~suppressed())


def with_suppression_reason(users: QuerySet) -> QuerySet:
    """The users annotated with ``suppression``, their address's Suppression reason or None."""
    reason = _suppressions_of_outer_user().values("reason")[:1]
    return users.annotate(suppression=Subquery(reason))


# --- The built-in kinds (the Open edX educator guide's groups; docs/recipients.md) -----------


def _users() -> QuerySet:
    return get_user_model()._default_manager.all()


def _without_course_team(learners: QuerySet, course_id: str) -> QuerySet:
    return learners.exclude(pk__in=get_lms().course_staff(course_id).values("pk"))


def _learners(query: MemberQuery, **filters) -> QuerySet:
    return get_lms().enrolled_learners(
        query.course_id, active_since=query.active_since, after_user_id=query.after_id, **filters
    )


def _all_learners(query: MemberQuery, **filters) -> QuerySet:
    """Every active enrollment's user, the activation and last-login rules not applied."""
    return get_lms().enrolled_learners(query.course_id, activated_only=False, **filters)


def _cohort_id(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidEmailError(
            _("Malformed cohort target %(value)r.") % {"value": value}, field="targets"
        ) from None


def _cohort_members(query: MemberQuery) -> QuerySet:
    """Enrolled learners in the cohort, as one flat join (Django's ``&``), not a subquery.

    Measured on PostgreSQL at a million learners: as ``pk__in`` or ``EXISTS``, the planner
    hashed or merged the whole cohort from its first member on every page (0.1-0.5 s a page
    deep into the course); as one join, the enrollment and membership indexes are both read
    from the page's start (a few ms). Both querysets are free of duplicates (the port's
    contract) and join different tables, so their join is too."""
    cohort = get_lms().cohort_members(
        query.course_id, _cohort_id(query.value), after_user_id=query.after_id
    )
    return _learners(query) & cohort


def _cohort_everyone(query: MemberQuery) -> QuerySet:
    cohort = get_lms().cohort_members(query.course_id, _cohort_id(query.value))
    return _all_learners(query) & cohort


def _track_groups(course_id: str) -> list[Group]:
    """Tracks are only offered when the course has more than one: with a single track, "All
    Learners" already says it."""
    tracks = get_lms().course_tracks(course_id)
    if len(tracks) < 2:
        return []
    return [
        Group(f"track:{t.slug}", _("Learners in the %(track)s Track") % {"track": t.display_name})
        for t in tracks
    ]


def _cohort_groups(course_id: str) -> list[Group]:
    """Every cohort, the default group included."""
    return [
        Group(f"cohort:{c.id}", _("Cohort: %(cohort)s") % {"cohort": c.name})
        for c in get_lms().course_cohorts(course_id)
    ]


def _only(group: Group) -> Callable[[str], list[Group]]:
    return lambda course_id: [group]


# Lazy: the registry lives as long as the process; each request reads it in its language.
MYSELF = Group(key="myself", label=gettext_lazy("Myself"))
STAFF = Group(key="staff", label=gettext_lazy("Staff and Administrators"))
LEARNERS = Group(key="learners", label=gettext_lazy("All Learners"))

register_group_kind(
    GroupKind(
        name=MYSELF.key,
        has_value=False,
        offered=_only(MYSELF),
        # Not filtered by opt-out: the sender asked for this copy themselves.
        members=lambda q: _users().filter(pk=q.sender_id, is_active=True),
        everyone=lambda q: _users().filter(pk=q.sender_id),
        opt_out_applies=False,
    )
)
register_group_kind(
    GroupKind(
        name=STAFF.key,
        has_value=False,
        offered=_only(STAFF),
        members=lambda q: get_lms().course_staff(q.course_id).filter(is_active=True),
        everyone=lambda q: get_lms().course_staff(q.course_id),
    )
)
register_group_kind(
    GroupKind(
        name=LEARNERS.key,
        has_value=False,
        offered=_only(LEARNERS),
        members=lambda q: _without_course_team(_learners(q), q.course_id),
        everyone=lambda q: _without_course_team(_all_learners(q), q.course_id),
        reaches=lambda facts, value: facts.reachable_learner and not facts.team,
    )
)
register_group_kind(
    GroupKind(
        name="track",
        has_value=True,
        offered=_track_groups,
        members=lambda q: _without_course_team(_learners(q, mode=q.value), q.course_id),
        everyone=lambda q: _without_course_team(_all_learners(q, mode=q.value), q.course_id),
        reaches=lambda facts, value: (
            facts.reachable_learner and not facts.team and facts.track == value
        ),
    )
)
register_group_kind(
    GroupKind(
        name="cohort",
        has_value=True,
        offered=_cohort_groups,
        members=_cohort_members,
        everyone=_cohort_everyone,
        # Team members in the cohort included, as in ``_cohort_members``.
        reaches=lambda facts, value: facts.reachable_learner and str(facts.cohort) == value,
    )
)
