"""Who did what to a send, and when: one row per change, written by the services in the
same transaction as the change itself, so that no change is left unattributed."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .sends import EmailTask


class SendAuditEntry(models.Model):
    """One change to a send: created (to go now), scheduled, edited, revoked, resent.

    ``changes`` is a small JSON diff: on creation the values set ({"subject": ...}); on an
    edit each changed field as [before, after]. The message body is recorded by its SHA-256
    (``body_sha256``): the audit says that it changed, the email row keeps what it says."""

    CREATED = "created"
    SCHEDULED = "scheduled"
    EDITED = "edited"
    REVOKED = "revoked"
    RESENT = "resent"
    ACTION_CHOICES = [
        (CREATED, _("Created")),
        (SCHEDULED, _("Scheduled")),
        (EDITED, _("Edited")),
        (REVOKED, _("Revoked")),
        (RESENT, _("Resent")),
    ]

    task = models.ForeignKey(EmailTask, on_delete=models.CASCADE, related_name="audit_entries")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=16, choices=ACTION_CHOICES)
    at = models.DateTimeField(default=timezone.now)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("send audit entry")
        verbose_name_plural = _("send audit entries")
        ordering = ["task", "at", "pk"]
        indexes = [models.Index(fields=["task", "action", "at"])]

    def __str__(self) -> str:
        return f"{self.action} task {self.task_id} by {self.actor_id} at {self.at:%Y-%m-%d %H:%M}"
