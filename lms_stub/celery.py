"""The site's celery app: configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms_stub.settings")

app = Celery("lms_stub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
