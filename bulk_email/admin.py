from django.contrib import admin

from .models import (
    Batch,
    BulkEmailFlag,
    CourseAuthorization,
    CourseEmail,
    CourseEmailTemplate,
    DisabledCourse,
    EmailTask,
    Optout,
    RecipientOutcome,
    SendAuditEntry,
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


@admin.register(SendAuditEntry)
class SendAuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the trail is written by the services with each change, never by hand."""

    list_display = ["task", "subject", "action", "actor", "at", "changes"]
    list_filter = ["action"]
    search_fields = ["task__email__subject", "task__email__course_id", "actor__username"]
    list_select_related = ["task__email", "actor"]

    @admin.display(description="subject")
    def subject(self, entry: SendAuditEntry) -> str:
        return entry.task.email.subject

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
