"""What learners and mailboxes say back: opt-outs."""

from django.conf import settings
from django.db import connection, models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import signals


class OptoutQuerySet(models.QuerySet):
    """The one place an opt-out is made or undone: each change is announced once."""

    def opt_out(self, *, user_id: int, course_id: str, how: str) -> "Optout":
        """Idempotent: the first opt-out, and how it was made, is kept. One INSERT ... ON
        CONFLICT DO NOTHING (PostgreSQL and SQLite alike): the unique (user, course) settles
        two at once in the database, with none of get_or_create's savepoint round trips (a
        flood of complaints makes thousands)."""
        optout = Optout(user_id=user_id, course_id=course_id, how=how, created=timezone.now())
        optout.pk = self._insert_if_new(optout)
        if optout.pk is None:
            return self.get(user_id=user_id, course_id=course_id)
        signals.announce_on_commit(
            signals.opted_out, Optout, user_id=user_id, course_id=course_id, how=how
        )
        return optout

    def _insert_if_new(self, optout: "Optout") -> int | None:
        """The new row's id, or None when the user had opted out of the course already."""
        table = connection.ops.quote_name(Optout._meta.db_table)
        columns = [Optout._meta.get_field(name) for name in ("user", "course_id", "how", "created")]
        names = ", ".join(connection.ops.quote_name(field.column) for field in columns)
        values = [field.get_db_prep_save(getattr(optout, field.attname), connection)
                  for field in columns]  # fmt: skip
        pk = connection.ops.quote_name(Optout._meta.pk.column)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({names}) VALUES (%s, %s, %s, %s) "
                f"ON CONFLICT DO NOTHING RETURNING {pk}",
                values,
            )
            row = cursor.fetchone()
        return row[0] if row else None

    def opt_in(self, *, user_id: int, course_id: str) -> bool:
        """Undo an opt-out; whether there was one."""
        deleted, _ = self.filter(user_id=user_id, course_id=course_id).delete()
        if deleted:
            signals.announce_on_commit(
                signals.opted_in, Optout, user_id=user_id, course_id=course_id
            )
        return bool(deleted)


class Optout(models.Model):
    """A learner's choice not to receive a course's bulk email."""

    DASHBOARD = "dashboard"
    LINK = "link"
    ONE_CLICK = "one_click"
    ADMIN = "admin"
    RETIRED = "retired"
    COMPLAINT = "complaint"
    MAILTO = "mailto"
    HOW_CHOICES = [
        (DASHBOARD, _("Learner dashboard")),
        (LINK, _("Unsubscribe link")),
        (ONE_CLICK, _("One-click unsubscribe (RFC 8058)")),
        (ADMIN, _("Admin")),
        (RETIRED, _("Account retired")),
        (COMPLAINT, _("Spam complaint (feedback loop)")),
        (MAILTO, _("Mail to the List-Unsubscribe address")),
    ]

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bulk_email_optouts"
    )
    course_id = models.CharField(max_length=255)
    created = models.DateTimeField(auto_now_add=True)
    how = models.CharField(max_length=16, choices=HOW_CHOICES, default=ADMIN)

    objects = OptoutQuerySet.as_manager()

    class Meta:
        verbose_name = _("opt-out")
        verbose_name_plural = _("opt-outs")
        constraints = [models.UniqueConstraint(fields=["user", "course_id"], name="unique_optout")]
        indexes = [models.Index(fields=["course_id", "user"])]

    def __str__(self) -> str:
        return f"{self.user_id} opted out of {self.course_id}"


class Suppression(models.Model):
    """An address no course mail goes to any more: it bounced for good, bounced again and
    again, or its owner complained. Recipient resolution leaves it out of every group."""

    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCES = "soft_bounces"
    COMPLAINT = "complaint"
    MANUAL = "manual"
    REASON_CHOICES = [
        (HARD_BOUNCE, _("Hard bounce")),
        (SOFT_BOUNCES, _("Repeated soft bounces")),
        (COMPLAINT, _("Spam complaint")),
        (MANUAL, _("Added by an operator")),
    ]

    # Lower-cased whole (what mailbox providers do; see feedback.normalize_address).
    address = models.CharField(max_length=254, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=16, choices=REASON_CHOICES)
    source = models.CharField(max_length=32, help_text=_("dsn, arf, ses, sendgrid, admin ..."))
    first_event = models.DateTimeField()
    last_event = models.DateTimeField()
    count = models.PositiveIntegerField(default=1, help_text=_("Events that confirmed it."))
    status_code = models.CharField(max_length=16, blank=True, help_text=_("e.g. 5.1.1"))
    diagnostic = models.TextField(blank=True)

    class Meta:
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")
        ordering = ["-last_event"]

    def __str__(self) -> str:
        return f"{self.address} ({self.get_reason_display()})"

    @staticmethod
    def normalize(address: str) -> str:
        """The form stored and compared: trimmed and lower-cased whole. Local parts may in
        theory be case-sensitive; no mailbox provider treats them so, and a suppression
        that misses "Ann@x" for "ann@x" would mail a complainer again. Recipient
        resolution compares ``Lower(email)`` with it in SQL."""
        return address.strip().lower()


class FeedbackEvent(models.Model):
    """One thing that came back (a DSN's recipient, a complaint, a mailed unsubscribe, an ESP
    event) or was ignored: the record that makes processing idempotent, counts soft bounces
    in their window and shows staff what each send's recipients said."""

    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    IGNORED = "ignored"
    KIND_CHOICES = [
        (HARD_BOUNCE, _("Hard bounce")),
        (SOFT_BOUNCE, _("Soft bounce")),
        (COMPLAINT, _("Complaint")),
        (UNSUBSCRIBE, _("Unsubscribe")),
        (IGNORED, _("Ignored")),
    ]

    kind = models.CharField(max_length=16, choices=KIND_CHOICES)
    # Unique per event: the same DSN or webhook delivered twice is recorded once.
    dedupe_key = models.CharField(max_length=64, unique=True)
    address = models.CharField(max_length=254, blank=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    task = models.ForeignKey(
        "bulk_email.EmailTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="feedback",
    )
    course_id = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=32)
    status_code = models.CharField(max_length=16, blank=True)
    diagnostic = models.TextField(blank=True)
    received = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("feedback event")
        verbose_name_plural = _("feedback events")
        ordering = ["-received"]
        indexes = [models.Index(fields=["task", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.address} ({self.source})"
