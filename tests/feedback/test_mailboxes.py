"""The feedback mailboxes, read for real: IMAP over TLS (IMAPS and STARTTLS) from a private
Dovecot, and a Maildir on disk. What a reader gets is the bytes delivered; what ``done`` does
is seen from a second, independent IMAP session and on disk."""

import mailbox
from pathlib import Path

import pytest

from bulk_email.feedback.mailboxes import (
    ImapMailbox,
    MailboxError,
    MaildirMailbox,
    configuration_problems,
    configured_mailbox,
    imap_settings,
)
from tests.dovecot import PASSWORD, USER, free_port
from tests.feedback.letters import deliver, folder_uids, raw_message

IMAP = {"host": "h", "user": "u", "password": "p"}


def imap(dovecot, **extra) -> ImapMailbox:
    return ImapMailbox(**imap_settings(dovecot.settings(**extra)))


# --- IMAP -------------------------------------------------------------------------------------


def test_imaps_gives_each_waiting_message_as_delivered(dovecot):
    # 8-bit bytes come back as they were (NUL cannot: IMAP has no way to send one).
    sent = [raw_message(1), raw_message(2, "Überall €".encode() + b"\xff\x01 binary")]
    for raw in sent:
        dovecot.deliver(raw)

    with imap(dovecot) as reader:
        letters = list(reader.waiting(10))

    assert [letter.raw for letter in letters] == sent
    assert len(folder_uids(dovecot)) == 2  # reading takes nothing out


def test_done_flags_and_expunges_so_the_next_session_sees_nothing(dovecot):
    for number in range(3):
        dovecot.deliver(raw_message(number))

    with imap(dovecot) as reader:
        for letter in reader.waiting(10):
            reader.done(letter.key)

    assert folder_uids(dovecot) == []
    with imap(dovecot) as reader:
        assert list(reader.waiting(10)) == []
    assert list((dovecot.maildir / "new").iterdir()) == []  # expunged, not only flagged
    assert list((dovecot.maildir / "cur").iterdir()) == []


def test_done_moves_to_the_processed_folder_when_one_is_set(dovecot):
    dovecot.deliver(raw_message(7))

    with imap(dovecot, processed_folder="Processed") as reader:
        [letter] = reader.waiting(10)
        reader.done(letter.key)

    assert folder_uids(dovecot) == []
    assert len(folder_uids(dovecot, "Processed")) == 1


def test_a_processed_folder_that_does_not_exist_yet_is_made(dovecot):
    dovecot.deliver(raw_message(8))

    for _ in range(2):  # made the first time, found the second
        with imap(dovecot, processed_folder="Feedback/Done") as reader:
            for letter in reader.waiting(10):
                reader.done(letter.key)

    assert folder_uids(dovecot) == []
    assert len(folder_uids(dovecot, "Feedback/Done")) == 1


def test_a_message_not_done_stays_waiting(dovecot):
    dovecot.deliver(raw_message(1))
    dovecot.deliver(raw_message(2))

    with imap(dovecot) as reader:
        _first, second = reader.waiting(10)
        reader.done(second.key)

    with imap(dovecot) as reader:
        assert [letter.raw for letter in reader.waiting(10)] == [raw_message(1)]


def test_limit_bounds_one_session(dovecot):
    for number in range(5):
        dovecot.deliver(raw_message(number))

    with imap(dovecot) as reader:
        letters = list(reader.waiting(2))

    assert [letter.raw for letter in letters] == [raw_message(0), raw_message(1)]


def test_starttls_on_the_plain_port(dovecot):
    dovecot.deliver(raw_message(1))
    options = {"port": dovecot.starttls_port, "ssl": False, "starttls": True}

    with imap(dovecot, **options) as reader:
        [letter] = reader.waiting(10)
        reader.done(letter.key)

    assert folder_uids(dovecot) == []


def test_a_refused_login_says_so_without_the_password(dovecot):
    with pytest.raises(MailboxError) as refused, imap(dovecot, password="wrong-pass-123"):
        pass

    message = str(refused.value)
    assert message.startswith(f"Could not log in as '{USER}' to 127.0.0.1:{dovecot.port}: ")
    assert "wrong-pass-123" not in message and PASSWORD not in message


def test_a_certificate_nobody_vouches_for_is_refused(dovecot):
    with (
        pytest.raises(MailboxError, match="TLS certificate is not trusted"),
        imap(dovecot, ca_file=None),
    ):
        pass


def test_a_folder_that_does_not_exist_is_named(dovecot):
    with (
        pytest.raises(MailboxError, match="open folder 'Bounces \"x\"'"),
        imap(dovecot, folder='Bounces "x"'),
    ):
        pass


def test_nobody_listening_is_a_mailbox_error():
    reader = ImapMailbox(**imap_settings({
        "host": "127.0.0.1", "port": free_port(), "user": "u", "password": "p", "timeout": 3,
    }))  # fmt: skip
    with pytest.raises(MailboxError, match=r"Could not connect to 127\.0\.0\.1:\d+: "), reader:
        pass


# --- Maildir ----------------------------------------------------------------------------------


@pytest.fixture
def maildir(tmp_path) -> Path:
    mailbox.Maildir(tmp_path / "feedback", create=True)
    return tmp_path / "feedback"


def test_a_maildir_gives_new_and_cur_messages_and_moves_done_ones_to_processed(maildir):
    first = deliver(maildir, raw_message(1))
    second = deliver(maildir, raw_message(2), subdir="cur")

    with MaildirMailbox(maildir) as reader:
        letters = {letter.key: letter.raw for letter in reader.waiting(10)}
        reader.done(first)

    assert letters == {first: raw_message(1), second: raw_message(2)}
    processed = list((maildir / ".Processed" / "cur").iterdir())
    assert [path.name for path in processed] == [f"{first}:2,S"]
    assert processed[0].read_bytes() == raw_message(1)
    with MaildirMailbox(maildir) as reader:
        assert [letter.key for letter in reader.waiting(10)] == [second]


def test_a_maildir_limit_takes_the_oldest_first(maildir):
    keys = [deliver(maildir, raw_message(number)) for number in range(4)]

    with MaildirMailbox(maildir) as reader:
        assert [letter.key for letter in reader.waiting(2)] == sorted(keys)[:2]


def test_a_folder_that_is_not_a_maildir_is_refused(tmp_path):
    with pytest.raises(MailboxError, match="is not a Maildir"), MaildirMailbox(tmp_path):
        pass


# --- Settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("imap_value", "maildir_value", "problem"),
    [
        (None, None, "Set BULK_EMAIL FEEDBACK_IMAP or FEEDBACK_MAILDIR"),
        ({"host": "h", "user": "u", "password": "p"}, "/x", "not both"),
        ({"host": "h"}, None, "FEEDBACK_IMAP needs user, password."),
        ({"host": "h", "user": "u", "password": "p", "ssl": False}, None, "must use TLS"),
        ({"host": "h", "user": "u", "password": "p", "starttls": True}, None, "ssl False"),
        ({"host": "h", "user": "u", "password": "p", "pasword": "p"}, None, "unknown key"),
        ("imaps://u:p@h/INBOX", None, "must be a dict"),
        (
            {"host": "h", "user": "u", "password": "p", "folder": "INBOX\r\nA1 DELETE INBOX"},
            None,
            "folder must not contain line breaks",
        ),
        ({**IMAP, "folder": "Réponses"}, None, "must be ASCII"),
        ({**IMAP, "port": "993"}, None, "port must be a port number"),
        ({**IMAP, "port": 70000}, None, "port must be a port number"),
        ({**IMAP, "timeout": 0}, None, "timeout must be a positive number"),
        (None, "/nonexistent/maildir", "is not a Maildir"),
    ],
)
def test_a_wrong_configuration_is_explained(settings, imap_value, maildir_value, problem):
    settings.BULK_EMAIL = {
        **settings.BULK_EMAIL, "FEEDBACK_IMAP": imap_value, "FEEDBACK_MAILDIR": maildir_value
    }  # fmt: skip
    assert any(problem in text for text in configuration_problems())
    with pytest.raises(Exception, match="FEEDBACK"):
        configured_mailbox()


def test_imap_ports_default_by_tls_mode():
    assert imap_settings({"host": "h", "user": "u", "password": "p"})["port"] == 993
    starttls = {"host": "h", "user": "u", "password": "p", "ssl": False, "starttls": True}
    assert imap_settings(starttls)["port"] == 143
