"""Services: what views, admin, commands and tasks call. Keyword-only, typed, named for what
they do (the HackSoft styleguide)."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from .exceptions import InvalidTokenError
from .lms import get_lms
from .models import Optout
from .tokens import read_token


@dataclass(frozen=True)
class UnsubscribeRequest:
    """Who a genuine unsubscribe token speaks for, and their current choice."""

    user_id: int
    course_id: str
    course_name: str
    opted_out: bool


def opt_out(*, user_id: int, course_id: str, how: str) -> Optout:
    """Record that the user receives no more bulk email of the course; idempotent (the first
    opt-out, and how it was made, is kept)."""
    optout, _ = Optout.objects.get_or_create(
        user_id=user_id, course_id=course_id, defaults={"how": how}
    )
    return optout


def opt_in(*, user_id: int, course_id: str) -> None:
    """Undo an opt-out: the user receives the course's bulk email again."""
    Optout.objects.filter(user_id=user_id, course_id=course_id).delete()


def is_opted_out(*, user_id: int, course_id: str) -> bool:
    return Optout.objects.filter(user_id=user_id, course_id=course_id).exists()


def read_unsubscribe_token(*, token: str) -> UnsubscribeRequest:
    """The request a token stands for; InvalidTokenError when the token is not genuine or its
    user no longer exists."""
    subject = read_token(token)
    if not get_user_model().objects.filter(pk=subject.user_id).exists():
        raise InvalidTokenError("This unsubscribe link is for an account that no longer exists.")
    course = get_lms().get_course(subject.course_id)
    return UnsubscribeRequest(
        user_id=subject.user_id,
        course_id=subject.course_id,
        course_name=course.display_name if course else subject.course_id,
        opted_out=is_opted_out(user_id=subject.user_id, course_id=subject.course_id),
    )
