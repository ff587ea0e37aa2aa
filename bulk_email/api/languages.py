"""The language a learner reads bulk_email in, where no session says it: the pages reached
logged out from a message's links speak the language the message's footer spoke."""

from .. import rendering
from ..lms import get_lms


def preferred_language(*, user_id: int) -> str | None:
    """The user's preferred language (the LMS port's) when the site has it, else None."""
    preferred = get_lms().preferred_languages([user_id]).get(user_id)
    return rendering.supported_language(preferred)
