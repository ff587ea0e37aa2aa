"""``manage.py poll_feedback`` as an operator (or cron) runs it: a real Dovecot over TLS, the
real feedback service, rows in the tables, the counts it prints; bad settings and arguments
end with one clear line and change nothing."""

import json
import re
import sys
import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from bulk_email.models import EmailTask, FeedbackEvent, Optout, Suppression
from bulk_email.tokens import BOUNCE, UNSUBSCRIBE, feedback_address
from tests.factories import make_course, make_task, make_user
from tests.feedback.letters import folder_uids
from tests.feedback.mail import FEEDBACK_DOMAIN, dsn, mail_to


@pytest.fixture
def ann():
    return make_user("ann", email="ann@example.com")


@pytest.fixture
def task(ann):
    return make_task(make_course(), make_user("prof"))


@pytest.fixture
def polling(settings, dovecot):
    """bulk_email reading the Dovecot's INBOX over IMAPS, under the feedback domain."""
    settings.BULK_EMAIL = {
        **settings.BULK_EMAIL, "FEEDBACK_DOMAIN": FEEDBACK_DOMAIN,
        "FEEDBACK_IMAP": dovecot.settings(), "FEEDBACK_MAILDIR": None,
    }  # fmt: skip
    return dovecot


def run(*args) -> str:
    out = StringIO()
    call_command("poll_feedback", *args, stdout=out)
    return out.getvalue()


def a_bounce(user, task) -> bytes:
    verp = feedback_address(BOUNCE, user.pk, task.pk, FEEDBACK_DOMAIN)
    return dsn(to=verp, recipient=user.email)


@pytest.mark.django_db
def test_each_kind_does_what_it_says_and_the_counts_are_printed(polling, ann, task):
    polling.deliver(a_bounce(ann, task))
    polling.deliver(mail_to(feedback_address(UNSUBSCRIBE, ann.pk, task.pk, FEEDBACK_DOMAIN)))
    polling.deliver(b"From: someone@example.org\r\nSubject: thanks!\r\n\r\nGreat course.\r\n")

    output = run()

    assert f"imap://feedback@127.0.0.1:{polling.port}/INBOX: 3 messages in" in output
    assert "(ignored: 1, opted_out: 1, suppressed: 1)" in output
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.status_code) == ("ann@example.com", "5.1.1")
    assert list(Optout.objects.values_list("user", "course_id")) == [(ann.pk, task.email.course_id)]
    assert EmailTask.objects.get(pk=task.pk).bounced == 1
    assert set(FeedbackEvent.objects.values_list("source", flat=True)) == {"imap"}
    assert folder_uids(polling) == []


@pytest.mark.django_db
def test_the_same_bounce_delivered_twice_counts_once(polling, ann, task):
    """What a crash between processing and flagging amounts to: the message comes again."""
    bounce = a_bounce(ann, task)
    polling.deliver(bounce)
    run()
    polling.deliver(bounce)

    assert "(duplicate: 1)" in run()
    assert Suppression.objects.get().count == 1
    assert EmailTask.objects.get(pk=task.pk).bounced == 1


@pytest.mark.django_db
def test_limit_bounds_a_run(polling, ann, task):
    for _ in range(3):
        polling.deliver(mail_to(f"someone{_}@{FEEDBACK_DOMAIN}"))

    assert ": 2 messages in" in run("--limit", "2")
    assert len(folder_uids(polling)) == 1


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_process_each_message_once(polling):
    if connection.vendor != "postgresql":
        pytest.skip("two database writers at once: this runs in the PostgreSQL pass")
    task = make_task(make_course(), make_user("prof"))
    users = [make_user(f"learner{n}", email=f"learner{n}@example.com") for n in range(8)]
    for user in users:
        polling.deliver(a_bounce(user, task))
    outputs, start = [], threading.Barrier(2)

    def poll_once():
        start.wait()
        try:
            outputs.append(run())
        finally:
            connection.close()

    threads = [threading.Thread(target=poll_once) for _ in range(2)]
    [thread.start() for thread in threads]
    [thread.join(60) for thread in threads]

    # Each message handed to the service once: a second time would print "duplicate".
    assert not any("duplicate" in output for output in outputs), outputs
    handled = [re.search(r": (\d+) message", output) for output in outputs]
    assert sum(int(found[1]) for found in handled if found) == 8, outputs
    assert FeedbackEvent.objects.count() == Suppression.objects.count() == 8
    assert folder_uids(polling) == []


# --- Bad settings and arguments: one clear line, nothing changed ------------------------------


@pytest.mark.django_db
def test_without_a_mailbox_setting_it_says_what_to_set(settings):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "FEEDBACK_IMAP": None, "FEEDBACK_MAILDIR": None}
    with pytest.raises(CommandError, match="Set BULK_EMAIL FEEDBACK_IMAP or FEEDBACK_MAILDIR"):
        run()


@pytest.mark.django_db
def test_a_refused_login_is_one_line_and_changes_nothing(polling, settings, ann, task):
    polling.deliver(a_bounce(ann, task))
    wrong_password = {**polling.settings(), "password": "nope"}
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "FEEDBACK_IMAP": wrong_password}
    with pytest.raises(CommandError, match="Could not log in as 'feedback'") as refused:
        run()
    assert refused.value.returncode == 75  # EX_TEMPFAIL: cron may try again
    assert "nope" not in str(refused.value)
    assert not FeedbackEvent.objects.exists()
    assert len(folder_uids(polling)) == 1


@pytest.mark.parametrize("limit", ["0", "-5"])
def test_a_limit_below_one_is_refused(limit):
    with pytest.raises(CommandError, match="--limit must be at least 1"):
        run("--limit", limit)


@pytest.mark.django_db
def test_a_maildir_from_the_command(settings, tmp_path, ann, task):
    for sub in ("new", "cur", "tmp"):
        (tmp_path / sub).mkdir()
    (tmp_path / "new" / "1.bounce").write_bytes(a_bounce(ann, task))
    settings.BULK_EMAIL = {
        **settings.BULK_EMAIL, "FEEDBACK_DOMAIN": FEEDBACK_DOMAIN,
        "FEEDBACK_IMAP": None, "FEEDBACK_MAILDIR": str(tmp_path),
    }  # fmt: skip

    output = run()

    assert f"maildir://{tmp_path}: 1 message in" in output and "(suppressed: 1)" in output
    assert FeedbackEvent.objects.get().source == "maildir"
    assert [p.name for p in (tmp_path / ".Processed" / "cur").iterdir()] == ["1.bounce:2,S"]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_three_processes_at_once_process_each_message_once(polling, tmp_path):
    """As cron on three machines would: three `manage.py poll_feedback` processes started
    together on one mailbox; every message is handed to the service exactly once."""
    if connection.vendor != "postgresql":
        pytest.skip("processes share the database: this runs in the PostgreSQL pass")
    from tests.live_pipeline import database_url
    from tests.processes import start

    task = make_task(make_course(), make_user("prof"))
    for n in range(30):
        polling.deliver(a_bounce(make_user(f"p{n}", email=f"p{n}@example.com"), task))
    env = {
        "DATABASE_URL": database_url(), "BULK_EMAIL_FEEDBACK_DOMAIN": FEEDBACK_DOMAIN,
        "BULK_EMAIL_FEEDBACK_IMAP": json.dumps(polling.settings()),
    }  # fmt: skip
    command = [sys.executable, "manage.py", "poll_feedback"]
    logs = [tmp_path / f"poll{n}.log" for n in range(3)]
    runs = [start(command, env=env, log_path=log) for log in logs]
    assert [run.wait(60) for run in runs] == [0, 0, 0], [log.read_text() for log in logs]

    outputs = [log.read_text() for log in logs]
    assert not any("duplicate" in output or "Traceback" in output for output in outputs)
    handled = [re.search(r": (\d+) message", output) for output in outputs]
    assert sum(int(found[1]) for found in handled if found) == 30, outputs
    assert FeedbackEvent.objects.count() == Suppression.objects.count() == 30
    assert EmailTask.objects.get(pk=task.pk).bounced == 30
    assert folder_uids(polling) == []


@pytest.mark.django_db
@pytest.mark.parametrize("where", ["imap", "maildir"])
def test_an_oversized_message_is_refused_unread_and_taken_out(where, polling, settings, tmp_path):
    """Only one byte past MAX_FEEDBACK_MESSAGE_BYTES is read: enough to refuse it."""
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "MAX_FEEDBACK_MESSAGE_BYTES": 50_000}
    huge = b"From: x@example.org\r\nSubject: big\r\n\r\n" + (b"B" * 998 + b"\r\n") * 300
    if where == "maildir":
        for sub in ("new", "cur", "tmp"):
            (tmp_path / sub).mkdir()
        (tmp_path / "new" / "1.huge").write_bytes(huge)
        settings.BULK_EMAIL = {**settings.BULK_EMAIL, "FEEDBACK_IMAP": None,
                               "FEEDBACK_MAILDIR": str(tmp_path)}  # fmt: skip
    else:
        polling.deliver(huge)

    assert "(ignored: 1)" in run()

    event = FeedbackEvent.objects.get()
    assert event.kind == "ignored" and "50001 bytes" in event.diagnostic, event.diagnostic
    assert folder_uids(polling) == []
    assert not Suppression.objects.exists()
