"""Who a group leaves out, and why: each person of a group counted once, under the first
rule that leaves them out (docs/recipients.md, "Who a group leaves out, and why")."""

import datetime
from dataclasses import dataclass

from django.db.models import (
    Case,
    Count,
    Exists,
    OuterRef,
    Q,
    Value,
    When,
)
from django.utils import timezone
from django.utils.translation import gettext, ngettext, ngettext_lazy

from . import app_settings, groups
from .recipients import eligibility_cutoff, no_jit


@dataclass(frozen=True)
class Breakdown:
    """A group's people: how many receive the email and how many each rule leaves out. Each
    person is counted once, under the first rule that leaves them out, in this order."""

    receive: int
    not_activated: int
    not_logged_in: int
    opted_out: int
    suppressed: int

    @property
    def left_out(self) -> int:
        return self.not_activated + self.not_logged_in + self.opted_out + self.suppressed

    def reasons(self) -> list[str]:
        """The rules that left someone out, worded for a person: ["2 opted out", ...]."""
        months = app_settings.get("LAST_LOGIN_ELIGIBILITY_MONTHS")
        return [
            words % {"n": number, "count": f"{number:,}", "months": months}
            for number, words in zip(self._left_out_by_rule(), LEFT_OUT_WORDS, strict=True)
            if number
        ]

    def _left_out_by_rule(self) -> list[int]:
        return [self.not_logged_in, self.opted_out, self.not_activated, self.suppressed]

    def summary(self) -> str:
        """A sentence for staff: "42 will receive it: 3 left out — 2 opted out, …"."""
        receive = ngettext("%(n)s will receive it", "%(n)s will receive it", self.receive) % {
            "n": f"{self.receive:,}"
        }
        if not self.left_out:
            return gettext("%(receive)s; nobody is left out.") % {"receive": receive}
        return ngettext(
            "%(receive)s: %(left_out)s left out — %(reasons)s.",
            "%(receive)s: %(left_out)s left out — %(reasons)s.",
            self.left_out,
        ) % {
            "receive": receive,
            "left_out": f"{self.left_out:,}",
            "reasons": ", ".join(self.reasons()),
        }


# In the order of ``Breakdown._left_out_by_rule``; "n" picks the plural form.
LEFT_OUT_WORDS = [
    ngettext_lazy(
        "%(count)s has not logged in for %(months)s months",
        "%(count)s have not logged in for %(months)s months",
        "n",
    ),
    ngettext_lazy("%(count)s opted out", "%(count)s opted out", "n"),
    ngettext_lazy(
        "%(count)s has not activated their account",
        "%(count)s have not activated their accounts",
        "n",
    ),
    ngettext_lazy(
        "%(count)s has an address that bounced or complained",
        "%(count)s have addresses that bounced or complained",
        "n",
    ),
]


def group_breakdown(
    *, course_id: str, sender_id: int | None, key: str, now: datetime.datetime | None = None
) -> Breakdown:
    """Who one group reaches and who it leaves out, by rule: one query, conditional counts
    over everyone the group is about (``GroupKind.everyone``). ``receive`` is the group's
    count on the Email tab (``group_counts``): the same rules, counted the other way."""
    everyone, members, opt_out_applies = groups.breakdown_parts(
        course_id=course_id, sender_id=sender_id, key=key, active_since=eligibility_cutoff(now=now)
    )
    opted_out = Q(groups.opted_out(course_id)) if opt_out_applies else Q(pk__in=[])
    # Each person's first reason, in one CASE: each test runs once a row, and only on the
    # rows the tests before it kept (the opt-out and suppression probes on members only).
    reason = Case(
        When(is_active=False, then=Value("not_activated")),
        # A correlated EXISTS, not ``pk IN (members)``: past work_mem (a million members),
        # PostgreSQL cannot hash the IN list and rescans it for every row (14 minutes at 1M
        # learners); the EXISTS is one index probe a row whatever the size.
        When(~Exists(members.filter(pk=OuterRef("pk"))), then=Value("not_logged_in")),
        When(opted_out, then=Value("opted_out")),
        When(Q(groups.suppressed()), then=Value("suppressed")),
        default=Value("receive"),
    )
    rows = everyone.annotate(reason=reason).values("reason").annotate(n=Count("pk")).order_by()
    counts = dict.fromkeys(Breakdown.__dataclass_fields__, 0)
    with no_jit():
        counts.update({row["reason"]: row["n"] for row in rows})
    return Breakdown(**counts)


def group_breakdowns(
    *, course_id: str, sender_id: int | None, now: datetime.datetime | None = None
) -> dict[str, Breakdown]:
    """``group_breakdown`` of each offered group, by key (one query each)."""
    now = now or timezone.now()
    return {
        group.key: group_breakdown(course_id=course_id, sender_id=sender_id, key=group.key, now=now)
        for group in groups.available_groups(course_id=course_id)
    }
