from django.contrib import admin

from .models import (
    Cohort,
    CohortMembership,
    Course,
    CourseAccessRole,
    CourseEnrollment,
    CourseMode,
    UserProfile,
)


class CourseModeInline(admin.TabularInline):
    model = CourseMode
    extra = 0


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["id", "display_name", "org", "language", "end"]
    search_fields = ["id", "display_name"]
    inlines = [CourseModeInline]


@admin.register(UserProfile)
class UserProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "name", "language"]
    list_filter = ["language"]
    search_fields = ["user__username", "user__email", "name"]
    raw_id_fields = ["user"]


@admin.register(CourseEnrollment)
class CourseEnrollmentAdmin(admin.ModelAdmin):
    list_display = ["user", "course", "mode", "is_active", "created"]
    list_filter = ["mode", "is_active"]
    search_fields = ["user__username", "user__email", "course__id"]
    raw_id_fields = ["user"]


@admin.register(CourseAccessRole)
class CourseAccessRoleAdmin(admin.ModelAdmin):
    list_display = ["user", "course", "role"]
    list_filter = ["role"]
    search_fields = ["user__username", "user__email", "course__id"]
    raw_id_fields = ["user"]


@admin.register(Cohort)
class CohortAdmin(admin.ModelAdmin):
    list_display = ["name", "course", "is_default"]
    search_fields = ["name", "course__id"]


@admin.register(CohortMembership)
class CohortMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "cohort"]
    search_fields = ["user__username", "cohort__name"]
    raw_id_fields = ["user"]
