import re

import pytest

from bulk_email.exceptions import BulkEmailError, InvalidTokenError
from bulk_email.tokens import make_message_id, make_token, read_message_id, read_token

COURSE = "course-v1:EPFL+Phys101+2026"
URL_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")


def test_a_token_names_its_user_and_course():
    token = make_token(42, COURSE)
    subject = read_token(token)
    assert (subject.user_id, subject.course_id) == (42, COURSE)


def test_tokens_are_url_safe_and_short():
    token = make_token(123456789, COURSE)
    assert URL_SAFE.match(token)
    assert len(token) <= 64


def test_a_unicode_course_key_round_trips():
    course = "course-v1:Ünï+物理+2026"
    assert read_token(make_token(1, course)).course_id == course


def test_a_forged_signature_is_refused():
    user, course, signature = make_token(42, COURSE).split(".")
    forged = f"{user}.{course}.{'A' * len(signature)}"
    with pytest.raises(InvalidTokenError):
        read_token(forged)


def test_a_token_moved_to_another_user_is_refused():
    _, course, signature = make_token(42, COURSE).split(".")
    with pytest.raises(InvalidTokenError):
        read_token(f"{make_token(43, COURSE).split('.')[0]}.{course}.{signature}")


def test_a_token_moved_to_another_course_is_refused():
    user, _, signature = make_token(42, COURSE).split(".")
    other_course = make_token(42, "course-v1:EPFL+Other+2026").split(".")[1]
    with pytest.raises(InvalidTokenError):
        read_token(f"{user}.{other_course}.{signature}")


def test_a_genuine_token_for_another_course_is_refused_when_the_course_is_given():
    token = make_token(42, "course-v1:EPFL+Other+2026")
    with pytest.raises(InvalidTokenError, match="another course"):
        read_token(token, course_id=COURSE)


@pytest.mark.parametrize(
    "damaged",
    ["", "abc", "1.2", "1.2.3.4", "!!.??.**", "zzzzzzzzzzzzzzzzzzzz.YQ.abc", "1.%%%.abc"],
)
def test_damaged_tokens_are_refused_with_a_clear_error(damaged):
    with pytest.raises(InvalidTokenError) as caught:
        read_token(damaged)
    assert isinstance(caught.value, BulkEmailError | ValueError)
    assert "link" in str(caught.value)


def test_a_truncated_token_is_refused():
    token = make_token(42, COURSE)
    with pytest.raises(InvalidTokenError):
        read_token(token[:-3])


def test_another_secret_key_invalidates_tokens(settings):
    token = make_token(42, COURSE)
    settings.SECRET_KEY = "another-secret-key-entirely-different"
    with pytest.raises(InvalidTokenError):
        read_token(token)


def test_a_rotated_secret_key_keeps_old_links_working(settings):
    old_key = settings.SECRET_KEY
    token = make_token(42, COURSE)
    settings.SECRET_KEY = "the-new-secret-key-after-rotation"
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert read_token(token).user_id == 42


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
def test_the_cached_salted_hmac_gives_django_s_bytes(algorithm):
    from django.utils.crypto import salted_hmac

    from bulk_email.tokens import salted_hmac_digest

    for secret, value in [("s3cret", "7\ncourse-v1:A+B+C"), ("other", "élève 🎓")]:
        expected = salted_hmac("salt", value, secret=secret, algorithm=algorithm).digest()
        assert salted_hmac_digest("salt", value, secret=secret, algorithm=algorithm) == expected


# --- Feedback addresses (VERP, the List-Unsubscribe mailto) -------------------------------------

from bulk_email.tokens import (  # noqa: E402
    BOUNCE,
    UNSUBSCRIBE,
    AddressToken,
    feedback_address,
    read_feedback_address,
)


def test_a_feedback_address_round_trips_in_any_case():
    address = feedback_address(BOUNCE, 123456, 789, "fb.example.org")
    local = address.partition("@")[0]
    assert len(local) <= 64 and local == local.lower()
    expected = AddressToken(BOUNCE, 123456, 789)
    assert read_feedback_address(address) == expected
    assert read_feedback_address(f"<{address.upper()}>") == expected


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a.replace("bounces+", "unsubscribe+"),  # signed for another purpose
        lambda a: a.replace("+1", "+2", 1),  # another user
        lambda a: a[:-20] + a[-19:],  # truncated
        lambda a: "someone@example.org",
        lambda a: "bounces+garbage@fb.example.org",
        lambda a: "",
    ],
)
def test_forged_or_damaged_feedback_addresses_are_refused(change):
    address = feedback_address(BOUNCE, 1, 2, "fb.example.org")
    with pytest.raises(InvalidTokenError):
        read_feedback_address(change(address))


def test_feedback_addresses_survive_a_key_rotation(settings):
    address = feedback_address(UNSUBSCRIBE, 5, 6, "fb.example.org")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-" + "x" * 50
    assert read_feedback_address(address).user_id == 5


def test_the_address_signature_is_rfc4648_base32_in_lower_case():
    import base64
    import os

    from bulk_email.tokens import _base32_lower

    for raw in [bytes(10), b"\xff" * 10, *(os.urandom(10) for _ in range(200))]:
        assert _base32_lower(raw) == base64.b32encode(raw).decode("ascii").lower()


# --- Message-IDs -------------------------------------------------------------------------


def test_a_message_id_names_its_email_and_user():
    message_id = make_message_id(12, 345, "lms.example.com")
    assert re.fullmatch(r"<[0-9a-f]{16}\.12\.345@lms\.example\.com>", message_id)
    assert read_message_id(message_id) == (12, 345)
    assert read_message_id(f"  {message_id.strip('<>')} ") == (12, 345)


def test_a_message_id_is_stable():
    assert make_message_id(1, 2, "d") == make_message_id(1, 2, "d") != make_message_id(1, 3, "d")


@pytest.mark.parametrize(
    "message_id",
    [
        "",
        "<>",
        "<abc@gmail.com>",
        "<0123456789abcdef.12.345@lms.example.com>",  # forged signature
        "<0123456789ab.12.345@lms.example.com>",  # truncated
        "<x.1.2.3@d>",
        "<x.١٢.345@d>",  # Arabic-Indic digits pass str.isdigit
        "<x.99999999999999999999999.1@d>",
        "<x.-1.2@d>",
    ],
)
def test_anyone_elses_or_a_damaged_message_id_is_none(message_id):
    assert read_message_id(message_id) is None


def test_a_message_id_moved_to_another_user_is_none():
    signature = make_message_id(12, 345, "d")[1:17]
    assert read_message_id(f"<{signature}.12.346@d>") is None


def test_a_message_id_signed_with_a_fallback_key_still_reads(settings):
    old = make_message_id(5, 6, "d")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-key-" + "x" * 50
    assert read_message_id(old) == (5, 6)
