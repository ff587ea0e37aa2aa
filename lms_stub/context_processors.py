from django.conf import settings


def site(request) -> dict:
    """What the base layout needs on every page."""
    return {"mailbox_enabled": settings.MAILBOX_ENABLED}
