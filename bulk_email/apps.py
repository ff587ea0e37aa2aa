from django.apps import AppConfig


class BulkEmailConfig(AppConfig):
    name = "bulk_email"
    verbose_name = "Bulk email"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import audience, checks, tasks, webhooks

        checks.register()
        webhooks.connect()
        audience.connect()
        audience.after_bump(tasks.recount_after_change)
