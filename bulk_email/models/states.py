"""A state field that moves only along a table of transitions: the one place a send's or a
batch's state changes."""

from collections.abc import Iterable

from django.db import models, transaction


class StateQuerySet(models.QuerySet):
    """Rows of a model whose ``state`` moves only along its ``TRANSITIONS`` table: the one
    place in bulk_email where a send's or a batch's state changes."""

    def transition(self, *, to: str, from_: Iterable[str] | None = None, **fields) -> int:
        """Move the rows in ``from_`` (default: every state the table lets into ``to``) to
        ``to``, writing ``fields`` too, in one conditional UPDATE; the rows changed.

        ValueError for a move the table does not allow: a bug, not a race."""
        allowed = self.model.sources_of(to)
        sources = allowed if from_ is None else set(from_)
        if not sources or not sources <= allowed:
            refused = sorted(sources - allowed) or "nothing"
            raise ValueError(f"{self.model.__name__}: {refused} -> {to} is not a transition.")
        rows = self.filter(state__in=sorted(sources))
        if to not in self.model.ANNOUNCED_STATES:
            return rows.update(state=to, **fields)
        with transaction.atomic(using=self.db):
            # Locked, so the UPDATE changes exactly these rows and each is announced once.
            ids = list(rows.select_for_update().values_list("pk", flat=True))
            changed = self.model.objects.filter(pk__in=ids).update(state=to, **fields)
            self.model.announce_transition(ids=ids, state=to)
        return changed


class StatefulModel(models.Model):
    """A model with a ``state`` field and ``TRANSITIONS``: {state: states it may move to}."""

    TRANSITIONS: dict[str, frozenset[str]] = {}
    # Moves into these states are announced (a signal per row, after the commit).
    ANNOUNCED_STATES: frozenset[str] = frozenset()

    class Meta:
        abstract = True

    @classmethod
    def sources_of(cls, to: str) -> set[str]:
        return {source for source, targets in cls.TRANSITIONS.items() if to in targets}

    @classmethod
    def announce_transition(cls, *, ids: list[int], state: str) -> None:
        """Announce that the rows ``ids`` moved into ``state`` (one of ANNOUNCED_STATES)."""
        raise NotImplementedError(f"{cls.__name__} announces no state")
