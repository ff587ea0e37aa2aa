"""bulk_email's tables. Courses are string keys and users are AUTH_USER_MODEL foreign keys:
no foreign key into any LMS, so these migrations stand on their own."""

from .audit import SendAuditEntry
from .courses import (
    BODY_SLOT,
    MESSAGE_BODY_SLOT,
    OPENEDX_EMAIL_PLACEHOLDERS,
    OPENEDX_RECIPIENT_PLACEHOLDERS,
    BulkEmailFlag,
    CourseAuthorization,
    CourseEmail,
    CourseEmailTemplate,
    DisabledCourse,
    Target,
    body_slot_problem,
    openedx_placeholder_problem,
    validate_has_one_body_slot,
)
from .feedback import FeedbackEvent, Optout, Suppression
from .sends import Batch, EmailTask, EmailTaskQuerySet, RecipientOutcome, TaskCounts
from .states import StatefulModel, StateQuerySet

__all__ = [
    "BODY_SLOT",
    "MESSAGE_BODY_SLOT",
    "OPENEDX_EMAIL_PLACEHOLDERS",
    "OPENEDX_RECIPIENT_PLACEHOLDERS",
    "Batch",
    "BulkEmailFlag",
    "CourseAuthorization",
    "CourseEmail",
    "CourseEmailTemplate",
    "DisabledCourse",
    "EmailTask",
    "EmailTaskQuerySet",
    "FeedbackEvent",
    "Optout",
    "RecipientOutcome",
    "SendAuditEntry",
    "StateQuerySet",
    "StatefulModel",
    "Suppression",
    "Target",
    "TaskCounts",
    "body_slot_problem",
    "openedx_placeholder_problem",
    "validate_has_one_body_slot",
]
