import csv

from django.contrib import admin, messages
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .api import suppressions
from .email_tab import Echo, csv_cell
from .exceptions import BadRequestError
from .models import (
    Batch,
    BulkEmailFlag,
    CourseAuthorization,
    CourseEmail,
    CourseEmailTemplate,
    DisabledCourse,
    EmailTask,
    FeedbackEvent,
    Optout,
    RecipientOutcome,
    SendAuditEntry,
    Suppression,
    Target,
)


@admin.register(BulkEmailFlag)
class BulkEmailFlagAdmin(admin.ModelAdmin):
    list_display = ["__str__", "enabled", "require_course_email_auth", "changed"]

    def has_add_permission(self, request):
        return not BulkEmailFlag.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CourseAuthorization)
class CourseAuthorizationAdmin(admin.ModelAdmin):
    list_display = ["course_id", "email_enabled"]
    list_filter = ["email_enabled"]
    search_fields = ["course_id"]


@admin.register(DisabledCourse)
class DisabledCourseAdmin(admin.ModelAdmin):
    list_display = ["course_id", "reason", "created"]
    search_fields = ["course_id"]


@admin.register(CourseEmailTemplate)
class CourseEmailTemplateAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]


class TargetInline(admin.TabularInline):
    model = Target
    extra = 0


@admin.register(CourseEmail)
class CourseEmailAdmin(admin.ModelAdmin):
    list_display = ["subject", "course_id", "sender", "created"]
    list_filter = ["created"]
    search_fields = ["subject", "course_id", "sender__email"]
    raw_id_fields = ["sender"]
    inlines = [TargetInline]


@admin.register(EmailTask)
class EmailTaskAdmin(admin.ModelAdmin):
    list_display = ["id", "email", "state", "queue", "send_at", "total", "created"]
    list_filter = ["state", "queue"]
    search_fields = ["email__subject", "email__course_id"]
    raw_id_fields = ["email", "requester", "resend_of"]
    readonly_fields = ["total", "retries", "batches_total", "batches_finished"]


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "seq", "state", "cursor", "sent", "failed", "skipped", "attempts"]
    list_filter = ["state"]
    raw_id_fields = ["task"]


@admin.register(RecipientOutcome)
class RecipientOutcomeAdmin(admin.ModelAdmin):
    list_display = ["task", "user", "status", "code", "detail", "created"]
    list_filter = ["status"]
    search_fields = ["user__email", "detail"]
    raw_id_fields = ["task", "batch", "user"]


@admin.register(Optout)
class OptoutAdmin(admin.ModelAdmin):
    list_display = ["user", "course_id", "how", "created"]
    list_filter = ["how"]
    search_fields = ["user__email", "user__username", "course_id"]
    raw_id_fields = ["user"]
    # An opt-out added here is recorded as made by an admin (the field's default).
    readonly_fields = ["how", "created"]


# --- What came back ------------------------------------------------------------------------------

SUPPRESSION_CSV_COLUMNS = [
    "address", "reason", "source", "first event", "last event", "count", "status code",
    "diagnostic", "user id",
]  # fmt: skip


def suppression_csv_row(row: Suppression) -> list:
    return [
        row.address, row.reason, row.source, row.first_event.isoformat(),
        row.last_event.isoformat(), row.count, row.status_code, row.diagnostic, row.user_id or "",
    ]  # fmt: skip


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    """Searchable by address; removed only with a reason (kept in the admin log, see
    api/suppressions.py), never by a bare delete; exported as CSV with every cell escaped
    against formula injection (a DSN's diagnostic is text a stranger wrote)."""

    list_display = ["address", "reason", "source", "count", "status_code", "last_event"]
    list_filter = ["reason", "source"]
    search_fields = ["address"]
    raw_id_fields = ["user"]
    actions = ["remove_with_reason", "export_csv"]
    fields = ["address", "reason", "diagnostic", "user"]
    readonly_fields_on_change = [
        "address", "source", "first_event", "last_event", "count", "status_code",
    ]  # fmt: skip

    def get_fields(self, request, obj=None):
        return self.fields if obj is None else [*self.fields, *self.readonly_fields_on_change]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields_on_change

    def get_changeform_initial_data(self, request):
        return {"reason": Suppression.MANUAL}

    def save_model(self, request, obj, form, change):
        """An address added here is an operator's: stored as feedback stores addresses."""
        if not change:
            now = timezone.now()
            obj.address = Suppression.normalize(obj.address)
            obj.source, obj.first_event, obj.last_event = "admin", now, now
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request, obj=None):
        return False  # removal asks for a reason: the "remove" action

    def has_remove_permission(self, request) -> bool:
        return request.user.has_perm("bulk_email.delete_suppression")

    @admin.action(description=_("Remove from the suppression list (asks for a reason)…"),
                  permissions=["remove"])  # fmt: skip
    def remove_with_reason(self, request, queryset):
        if "apply" not in request.POST:
            return self.removal_page(request, queryset, reason="", error="")
        reason = request.POST.get("reason", "")
        try:
            removed = suppressions.remove_suppressions(
                suppressions=queryset, removed_by=request.user, reason=reason
            )
        except BadRequestError as error:
            return self.removal_page(request, queryset, reason=reason, error=str(error))
        message = ngettext(
            "Removed %(count)d address from the suppression list.",
            "Removed %(count)d addresses from the suppression list.",
            removed,
        )
        self.message_user(request, message % {"count": removed}, messages.SUCCESS)
        return None

    def removal_page(self, request, queryset, *, reason: str, error: str):
        context = {
            **self.admin_site.each_context(request),
            "title": _("Remove from the suppression list"),
            "opts": self.model._meta,
            "suppressions": queryset,
            "reason": reason,
            "error": error,
            "reason_max_length": suppressions.REMOVAL_REASON_MAX_LENGTH,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        template = "admin/bulk_email/suppression/remove_with_reason.html"
        return TemplateResponse(request, template, context, status=400 if error else 200)

    @admin.action(description=_("Export the selected addresses as CSV"))
    def export_csv(self, request, queryset):
        writer = csv.writer(Echo())
        rows = [SUPPRESSION_CSV_COLUMNS, *map(suppression_csv_row, queryset.iterator())]
        lines = (writer.writerow(map(csv_cell, row)) for row in rows)
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="suppressions.csv"'
        return response


@admin.register(FeedbackEvent)
class FeedbackEventAdmin(admin.ModelAdmin):
    """What came back, as it was recorded: read only (the record of what happened)."""

    list_display = ["received", "kind", "address", "source", "status_code", "task", "course_id"]
    list_filter = ["kind", "source"]
    search_fields = ["address", "course_id"]
    date_hierarchy = "received"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SendAuditEntry)
class SendAuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the trail is written by the services with each change, never by hand."""

    list_display = ["task", "subject", "action", "actor", "at", "changes"]
    list_filter = ["action"]
    search_fields = ["task__email__subject", "task__email__course_id", "actor__username"]
    list_select_related = ["task__email", "actor"]

    @admin.display(description=_("subject"))
    def subject(self, entry: SendAuditEntry) -> str:
        return entry.task.email.subject

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
