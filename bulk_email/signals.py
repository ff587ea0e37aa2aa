"""What bulk_email announces, for the host LMS's tracking, analytics or audit logs (Open edX
emits the ``edx.bulk_email.created`` and ``edx.bulk_email.opt_out`` tracking events).

Each signal is sent once the change is committed, never for a change rolled back, with
``send_robust``: a receiver that raises is logged by Django and never undoes the change or
stops a send. docs/signals.md lists the arguments; lms_stub/events.py is an example receiver."""

from django.db import transaction
from django.dispatch import Signal

# A send was requested, now or scheduled. sender=CourseEmail; email, task, user.
email_created = Signal()
# A send's worker started resolving its recipients. sender=EmailTask; task.
send_started = Signal()
# A send ended: Success, Failure or Revoked. sender=EmailTask; task, state, counts (TaskCounts).
send_finished = Signal()
# A learner opted out of a course's bulk email. sender=Optout; user_id, course_id, how.
opted_out = Signal()
# A learner opted back in. sender=Optout; user_id, course_id.
opted_in = Signal()
# An address receives no more course mail. sender=Suppression; address, reason, source, user_id.
address_suppressed = Signal()

# Sent BY THE HOST LMS when who a course reaches changes: an enrollment made, ended or moved
# to another track, a cohort membership, a course-team role, an account (de)activated.
# course_id: the course, or None for every course. bulk_email counts that course's groups
# again (docs/performance.md); the Email tab's counts are otherwise cached.
audience_changed = Signal()


def announce_on_commit(signal: Signal, sender: type, **arguments) -> None:
    """Send ``signal`` after the current transaction commits (at once outside one)."""
    if not signal.has_listeners(sender):
        return
    transaction.on_commit(lambda: signal.send_robust(sender=sender, **arguments))
