"""The LMS-style site that bulk_email plugs into (development, tests, demos)."""

from .celery import app as celery_app

__all__ = ["celery_app"]
