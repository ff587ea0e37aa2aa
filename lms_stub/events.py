"""An example receiver of bulk_email's signals: each one becomes a JSON line on the
"lms_stub.events" logger, named as Open edX's tracking events are where it has one
(edx.bulk_email.created, edx.bulk_email.opt_out). A real LMS would hand these to its
tracking or analytics pipeline instead."""

import json
import logging

from django.utils import timezone

from bulk_email import signals

logger = logging.getLogger("lms_stub.events")


def log_event(name: str, **event) -> None:
    line = {"name": name, "time": timezone.now().isoformat(), "event": event}
    logger.info(json.dumps(line, ensure_ascii=False, sort_keys=True))


def on_email_created(sender, *, email, task, user, **_):
    log_event(
        "edx.bulk_email.created",
        course_id=email.course_id,
        email_id=email.pk,
        task_id=task.pk,
        user_id=getattr(user, "pk", None),
        to_option=[target.key for target in email.targets.all()],
        scheduled=task.send_at.isoformat() if task.send_at else None,
    )


def on_send_started(sender, *, task, **_):
    log_event("bulk_email.send.started", course_id=task.email.course_id, task_id=task.pk)


def on_send_finished(sender, *, task, state, counts, **_):
    log_event(
        "bulk_email.send.finished",
        course_id=task.email.course_id,
        task_id=task.pk,
        state=state,
        **{field: getattr(counts, field) for field in ("total", "sent", "failed", "skipped")},
    )


def on_opted_out(sender, *, user_id, course_id, how, **_):
    log_event("edx.bulk_email.opt_out", user_id=user_id, course_id=course_id, how=how)


def on_opted_in(sender, *, user_id, course_id, **_):
    log_event("edx.bulk_email.opt_in", user_id=user_id, course_id=course_id)


def on_address_suppressed(sender, *, address, reason, source, user_id, **_):
    # The address itself stays out of the event log: the user id says who.
    log_event("bulk_email.suppressed", user_id=user_id, reason=reason, source=source)


def connect() -> None:
    for signal, receiver in receivers().items():
        signal.connect(receiver, dispatch_uid=f"lms_stub.events.{receiver.__name__}")


def disconnect() -> None:
    """For a benchmark of bulk_email alone: this example's JSON lines are the site's cost."""
    for signal, receiver in receivers().items():
        signal.disconnect(receiver, dispatch_uid=f"lms_stub.events.{receiver.__name__}")


def receivers() -> dict:
    return {
        signals.email_created: on_email_created,
        signals.send_started: on_send_started,
        signals.send_finished: on_send_finished,
        signals.opted_out: on_opted_out,
        signals.opted_in: on_opted_in,
        signals.address_suppressed: on_address_suppressed,
    }
