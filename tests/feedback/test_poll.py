"""The poll loop over a real mailbox (Dovecot over TLS, a Maildir): each waiting message is
handed to the processor once and taken out only after it returned; a failure leaves it
waiting; two runs at once never hand the same message over twice. The processor here is a
recorder (these are unit tests of the loop); the real one runs in
tests/commands/test_poll_feedback.py and the whole loop test."""

import threading
import time

import pytest
from django.db import OperationalError, connection

from bulk_email.feedback import poll
from bulk_email.feedback.mailboxes import ImapMailbox, MailboxError, MaildirMailbox, imap_settings
from tests.feedback.letters import deliver, folder_uids, raw_message


class Recorder:
    """Records what it was handed; answers "suppressed", or raises for chosen messages."""

    def __init__(self, *, fail_on: bytes = b"", error=RuntimeError, pause: float = 0) -> None:
        self.seen: list[bytes] = []
        self.fail_on, self.error, self.pause = fail_on, error, pause
        self.lock = threading.Lock()

    def __call__(self, raw: bytes, *, source: str) -> str:
        assert source in ("imap", "maildir")
        time.sleep(self.pause)
        with self.lock:
            self.seen.append(raw)
        if self.fail_on and self.fail_on in raw:
            raise self.error("the processor failed")
        return "suppressed"


def imap(dovecot, **extra) -> ImapMailbox:
    return ImapMailbox(**imap_settings(dovecot.settings(**extra)))


@pytest.fixture
def maildir(tmp_path):
    for sub in ("new", "cur", "tmp"):
        (tmp_path / "feedback" / sub).mkdir(parents=True)
    return tmp_path / "feedback"


def test_each_message_is_processed_once_then_taken_out(dovecot, db):
    for number in range(3):
        dovecot.deliver(raw_message(number))
    recorder = Recorder()

    report = poll.poll_feedback(mailbox=imap(dovecot), process=recorder, limit=10)

    assert recorder.seen == [raw_message(n) for n in range(3)]
    assert report.outcomes == {"suppressed": 3} and not report.busy
    assert folder_uids(dovecot) == []
    again = poll.poll_feedback(mailbox=imap(dovecot), process=recorder, limit=10)
    assert again.outcomes == {} and len(recorder.seen) == 3


def test_limit_leaves_the_rest_for_the_next_run(dovecot, db):
    for number in range(5):
        dovecot.deliver(raw_message(number))
    recorder = Recorder()

    first = poll.poll_feedback(mailbox=imap(dovecot), process=recorder, limit=2)
    second = poll.poll_feedback(mailbox=imap(dovecot), process=recorder, limit=10)

    assert (first.processed, second.processed) == (2, 3)
    assert recorder.seen == [raw_message(n) for n in range(5)]


def test_a_message_whose_processing_fails_stays_waiting(dovecot, db):
    dovecot.deliver(raw_message(1, b"poison"))
    dovecot.deliver(raw_message(2))

    report = poll.poll_feedback(mailbox=imap(dovecot), process=Recorder(fail_on=b"poison"))

    assert report.outcomes == {poll.FAILED: 1, "suppressed": 1}
    assert len(folder_uids(dovecot)) == 1
    retried = Recorder()
    poll.poll_feedback(mailbox=imap(dovecot), process=retried)
    assert retried.seen == [raw_message(1, b"poison")]


def test_a_database_outage_stops_the_run_and_takes_nothing_out(dovecot, db):
    for number in range(3):
        dovecot.deliver(raw_message(number))
    recorder = Recorder(fail_on=b"Hello", error=OperationalError)

    with pytest.raises(OperationalError):
        poll.poll_feedback(mailbox=imap(dovecot), process=recorder)

    assert len(recorder.seen) == 1
    assert len(folder_uids(dovecot)) == 3


def test_a_crash_before_the_message_is_taken_out_processes_it_again(dovecot, db):
    """The exactly-once window: processed (committed), then the connection dies before the
    message is flagged. The next run hands it over again; record_feedback's dedupe key makes
    that second time change nothing (tests/commands/test_poll_feedback.py shows it)."""
    dovecot.deliver(raw_message(1))
    mailbox, recorder = imap(dovecot), Recorder()

    def cut_connection(key):
        mailbox.client.shutdown()
        ImapMailbox.done(mailbox, key)

    mailbox.done = cut_connection
    with pytest.raises(MailboxError, match="mark a message processed"):
        poll.poll_feedback(mailbox=mailbox, process=recorder)

    poll.poll_feedback(mailbox=imap(dovecot), process=recorder)
    assert recorder.seen == [raw_message(1), raw_message(1)]
    assert folder_uids(dovecot) == []


def test_a_maildir_is_polled_the_same_way(maildir, db):
    keys = [deliver(maildir, raw_message(n)) for n in range(2)]
    recorder = Recorder()

    report = poll.poll_feedback(mailbox=MaildirMailbox(maildir), process=recorder)

    assert report.outcomes == {"suppressed": 2}
    assert recorder.seen == [raw_message(0), raw_message(1)]
    assert sorted(p.name for p in (maildir / ".Processed" / "cur").iterdir()) == [
        f"{key}:2,S" for key in sorted(keys)
    ]
    assert list((maildir / "new").iterdir()) == []


# --- Two runs at once ---------------------------------------------------------------------


def run_in_threads(count: int, run) -> list:
    """``run()`` in ``count`` threads started together; their results."""
    results, start = [None] * count, threading.Barrier(count)

    def worker(index: int) -> None:
        start.wait()
        try:
            results[index] = run()
        finally:
            connection.close()  # each thread's own database connection (the advisory lock's)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_pollers_at_once_never_process_a_message_twice(dovecot):
    for number in range(6):
        dovecot.deliver(raw_message(number))
    recorder = Recorder(pause=0.2)  # 1.2 s: the second run starts meanwhile, even on a busy machine

    reports = run_in_threads(2, lambda: poll.poll_feedback(mailbox=imap(dovecot), process=recorder))

    assert sorted(recorder.seen) == sorted(raw_message(n) for n in range(6))  # each once
    assert sorted(report.busy for report in reports) == [False, True]
    assert folder_uids(dovecot) == []


@pytest.mark.django_db(transaction=True)
def test_two_maildir_pollers_at_once_never_process_a_message_twice(maildir):
    for number in range(6):
        deliver(maildir, raw_message(number))
    recorder = Recorder(pause=0.2)

    reports = run_in_threads(
        2, lambda: poll.poll_feedback(mailbox=MaildirMailbox(maildir), process=recorder)
    )

    assert sorted(recorder.seen) == sorted(raw_message(n) for n in range(6))
    assert sorted(report.busy for report in reports) == [False, True]


def test_the_redis_lock_is_held_once_renewed_and_freed(settings, redis_url):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "REDIS_URL": redis_url,
                           "FEEDBACK_POLL_LOCK_SECONDS": 5}  # fmt: skip
    with poll._redis_lock("test-lock") as first:
        with poll._redis_lock("test-lock") as second:
            assert (first.held, second.held) == (True, False)
        first.renew()
    with poll._redis_lock("test-lock") as again:
        assert again.held


def test_the_file_lock_is_held_once_and_freed():
    with poll._file_lock("test-lock") as first, poll._file_lock("test-lock") as second:
        assert (first.held, second.held) == (True, False)
    with poll._file_lock("test-lock") as again:
        assert again.held


@pytest.mark.django_db
def test_the_database_lock_is_held_once():
    if connection.vendor != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's: this runs in the PostgreSQL pass")
    with poll._advisory_lock("0123456789abcdef") as first:
        [second] = run_in_threads(1, lambda: poll._advisory_lock("0123456789abcdef").__enter__())
        assert (first.held, second.held) == (True, False)


def test_an_unreachable_redis_lock_is_a_clear_error(settings):
    from tests.dovecot import free_port

    settings.BULK_EMAIL = {**settings.BULK_EMAIL,
                           "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # fmt: skip
    unreachable = pytest.raises(poll.PollLockError, match="The poll lock's Redis cannot be")
    with unreachable, poll._redis_lock("test-lock"):
        pass
