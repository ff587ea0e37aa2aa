"""A state field that moves only along a table of transitions: the one place a send's or a
batch's state changes."""

from collections.abc import Iterable

from django.db import models


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
        return self.filter(state__in=sorted(sources)).update(state=to, **fields)


class StatefulModel(models.Model):
    """A model with a ``state`` field and ``TRANSITIONS``: {state: states it may move to}."""

    TRANSITIONS: dict[str, frozenset[str]] = {}

    class Meta:
        abstract = True

    @classmethod
    def sources_of(cls, to: str) -> set[str]:
        return {source for source, targets in cls.TRANSITIONS.items() if to in targets}
