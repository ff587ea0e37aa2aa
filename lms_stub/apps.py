from django.apps import AppConfig


class LmsStubConfig(AppConfig):
    name = "lms_stub"
    verbose_name = "LMS (stub)"
