from django.apps import AppConfig


class LmsStubConfig(AppConfig):
    name = "lms_stub"
    verbose_name = "LMS (stub)"

    def ready(self):
        from . import bulk_email_backend, events

        events.connect()  # bulk_email's signals, logged as JSON lines (an example receiver)
        bulk_email_backend.announce_audience_changes()
