from django.apps import AppConfig


class LmsStubConfig(AppConfig):
    name = "lms_stub"
    verbose_name = "LMS (stub)"

    def ready(self):
        from . import events  # bulk_email's signals, logged as JSON lines (an example receiver)

        events.connect()
