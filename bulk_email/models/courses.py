"""The feature switch, course authorization, templates, and what staff composed."""

import re
import string

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Exists, Subquery
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class BulkEmailFlag(models.Model):
    """The feature switch: one row (pk=1), edited in the Django admin.

    Disabled on a new install, as in Open edX; ``seed_demo`` enables it for the demo site."""

    enabled = models.BooleanField(default=False)
    require_course_email_auth = models.BooleanField(
        default=True,
        help_text=_("When set, only courses with a CourseAuthorization (email enabled) may send."),
    )
    changed = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("bulk email flag")
        verbose_name_plural = _("bulk email flags")

    def __str__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        scope = "authorized courses only" if self.require_course_email_auth else "all courses"
        return f"Bulk email {state} ({scope})"

    def save(self, *args, **kwargs):
        self.pk = 1  # a singleton: every save writes the one row
        super().save(*args, **kwargs)

    @classmethod
    def current(cls) -> "BulkEmailFlag":
        return cls.objects.get_or_create(pk=1)[0]

    @classmethod
    def feature_enabled(cls, course_id: str) -> bool:
        """Whether course staff of ``course_id`` may send bulk email."""
        return not cls.disabled_reason(course_id)

    @classmethod
    def disabled_reason(cls, course_id: str) -> str:
        """Why ``course_id`` may not send bulk email, for its staff; "" when it may. Open
        edX's order: the site's flag, then a course turned off (even when every course may
        send), then the per-course authorization the flag may require."""
        disabled = DisabledCourse.objects.filter(course_id=course_id)
        authorized = CourseAuthorization.objects.filter(course_id=course_id, email_enabled=True)
        flag = (  # one query: the tab's every request asks
            cls.objects.filter(pk=1)
            .annotate(
                course_disabled=Exists(disabled),
                disabled_because=Subquery(disabled.values("reason")[:1]),
                course_authorized=Exists(authorized),
            )
            .first()
        )
        if flag is None or not flag.enabled:
            return gettext(
                "Bulk email is turned off for this site (the bulk email flag in the admin)."
            )
        if flag.course_disabled:
            return DisabledCourse(reason=flag.disabled_because).explanation()
        if flag.require_course_email_auth and not flag.course_authorized:
            return gettext(
                "This course is not authorized to send bulk email (course authorizations)."
            )
        return ""


class DisabledCourse(models.Model):
    """Bulk email turned off for one course, whatever the flag says (Open edX's model of the
    same name): its Email tab disappears, the API refuses with the reason, and a send that
    has not started yet fails with it."""

    course_id = models.CharField(max_length=255, unique=True)
    reason = models.CharField(
        max_length=255, blank=True, help_text=_("Shown to the course's staff in place of the tab.")
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("disabled course")
        verbose_name_plural = _("disabled courses")

    def __str__(self) -> str:
        return f"{self.course_id}: bulk email turned off"

    def explanation(self) -> str:
        if self.reason:
            return gettext("Bulk email is turned off for this course: %(reason)s") % {
                "reason": self.reason
            }
        return gettext("Bulk email is turned off for this course.")


class CourseAuthorization(models.Model):
    """Enables bulk email for one course when the flag requires per-course authorization."""

    course_id = models.CharField(max_length=255, unique=True)
    email_enabled = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("course authorization")
        verbose_name_plural = _("course authorizations")

    def __str__(self) -> str:
        return f"{self.course_id}: email {'enabled' if self.email_enabled else 'disabled'}"


MESSAGE_BODY_SLOT = "{{message_body}}"
# Django's own spelling, "{{ message_body }}", is the same slot: a template an operator wrote
# as a Django template must not drop the message silently.
BODY_SLOT = re.compile(r"\{\{\s*message_body\s*\}\}")


def body_slot_problem(template: str) -> str:
    """Why ``template`` cannot wrap a message ("" when it has exactly one body slot)."""
    slots = len(BODY_SLOT.findall(template))
    if slots == 1:
        return ""
    found = "none" if not slots else f"{slots}"
    return f"The template must contain {MESSAGE_BODY_SLOT} exactly once (found {found})."


def validate_has_one_body_slot(template: str) -> None:
    if problem := body_slot_problem(template):
        raise ValidationError(problem)


# Open edX's CourseEmailTemplate placeholders (Python format fields): per email, then per
# recipient. Only these bare names are accepted: no attribute, index, conversion or spec.
OPENEDX_EMAIL_PLACEHOLDERS = (
    "course_title",
    "course_root",
    "course_url",
    "course_image_url",
    "course_end_date",
    "course_language",
    "course_id",
    "account_settings_url",
    "email_settings_url",
    "logo_url",
    "platform_name",
    "year",
)
OPENEDX_RECIPIENT_PLACEHOLDERS = ("name", "email", "user_id", "unsubscribe_link")
OPENEDX_PLACEHOLDERS = OPENEDX_EMAIL_PLACEHOLDERS + OPENEDX_RECIPIENT_PLACEHOLDERS


def openedx_placeholder_problem(template: str) -> str:
    """Why ``template`` is not an Open edX template we can fill ("" when it is): it must be
    a valid Python format string (literal braces doubled, as in Open edX's CSS) whose fields
    are known bare names; anything else would fail at send time or reach into objects."""
    try:
        parsed = string.Formatter().parse(template)
        fields = [field[1:] for field in parsed if field[1] is not None]
    except ValueError as error:
        return f"Not an Open edX template ({error}): literal braces must be doubled, {{ and }}."
    for name, spec, conversion in fields:
        if name not in OPENEDX_PLACEHOLDERS or spec or conversion:
            known = ", ".join(f"{{{known}}}" for known in OPENEDX_PLACEHOLDERS)
            return (
                f"Unknown placeholder {{{name}}}: the known ones are {known}; literal braces "
                "must be doubled, {{ and }}."
            )
    return ""


class CourseEmailTemplate(models.Model):
    """A named wrapper around the composed message (branding, layout, <style> to inline)."""

    name = models.CharField(max_length=255, unique=True)
    html_template = models.TextField(validators=[validate_has_one_body_slot])
    plain_template = models.TextField(validators=[validate_has_one_body_slot])
    openedx_placeholders = models.BooleanField(
        default=False,
        help_text=_(
            "An Open edX template: {course_title}, {name}... are filled, and literal "
            "braces are doubled as Python format strings have them."
        ),
    )

    class Meta:
        verbose_name = _("course email template")
        verbose_name_plural = _("course email templates")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not self.openedx_placeholders:
            return
        problems = {
            field: problem
            for field in ("html_template", "plain_template")
            if (problem := openedx_placeholder_problem(getattr(self, field)))
        }
        if problems:
            raise ValidationError(problems)


IDEMPOTENCY_KEY_MAX_LENGTH = 64


class CourseEmail(models.Model):
    """What the instructor composed: one row per email, whatever how many times it is sent."""

    course_id = models.CharField(max_length=255, db_index=True)
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    subject = models.CharField(max_length=128)
    html_message = models.TextField()
    text_message = models.TextField(
        blank=True, help_text=_("Plain-text part; made from the HTML with html2text when empty.")
    )
    template_name = models.CharField(max_length=255, blank=True)
    from_addr = models.CharField(
        max_length=255, blank=True, help_text=_("Overrides the default From address.")
    )
    # The key the Email tab makes once per compose: the same request again (a double click,
    # a retry after a lost answer) finds this email instead of sending a second one. The
    # constraint, not a lookup, is what holds when the copies arrive together. NULL (the
    # command line, scripts without a key) never collides, where "" would.
    idempotency_key = models.CharField(  # noqa: DJ001
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH, null=True, blank=True
    )
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("course email")
        verbose_name_plural = _("course emails")
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["course_id", "sender", "idempotency_key"],
                name="unique_email_per_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.course_id}: {self.subject}"


class Target(models.Model):
    """One "Send to" group of an email, by its key's parts: "learners", or "track" and
    "verified". The kinds of group are registered in groups.py, which validates keys."""

    email = models.ForeignKey(CourseEmail, on_delete=models.CASCADE, related_name="targets")
    target_type = models.CharField(max_length=16, help_text=_("The group kind (groups.py)."))
    target_value = models.CharField(
        max_length=255, blank=True, help_text=_("The track's mode slug or the cohort's id.")
    )

    class Meta:
        verbose_name = _("target")
        verbose_name_plural = _("targets")
        constraints = [
            models.UniqueConstraint(
                fields=["email", "target_type", "target_value"], name="unique_email_target"
            )
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def key(self) -> str:
        """The stable text form used by forms and the JSON API: "learners", "track:verified"."""
        return f"{self.target_type}:{self.target_value}" if self.target_value else self.target_type
