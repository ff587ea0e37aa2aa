"""Signed unsubscribe tokens: "<user id base36>.<course id base64url>.<signature>".

The token carries the user and the course and an HMAC of both (``salted_hmac`` with the
SECRET_KEY, as ``django.contrib.auth.tokens`` does), so a link in a mail identifies its learner
and course without a database lookup and without logging in. The signature is cut to 96 bits:
an attacker can only guess online, one request per try, so 2**96 is far beyond reach, and the
links stay short. Tokens do not expire: CAN-SPAM wants the link to keep working, and an
unsubscribe is harmless. Rotating SECRET_KEY (with the old one in SECRET_KEY_FALLBACKS) keeps
old links valid.
"""

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.utils.crypto import constant_time_compare
from django.utils.http import base36_to_int, int_to_base36

from .exceptions import InvalidTokenError

KEY_SALT = "bulk_email.tokens.unsubscribe"
SIGNATURE_BYTES = 12
SEPARATOR = "."


@dataclass(frozen=True)
class UnsubscribeToken:
    user_id: int
    course_id: str


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def salted_hmac_digest(key_salt: str, value: str, *, secret: str, algorithm: str) -> bytes:
    """``django.utils.crypto.salted_hmac(...).digest()``, the same bytes, with the key
    derived once per (salt, secret) rather than on every call: it runs twice per message."""
    keyed = _keyed_hmac(key_salt, secret, algorithm).copy()
    keyed.update(value.encode("utf-8"))
    return keyed.digest()


@lru_cache(maxsize=32)
def _keyed_hmac(key_salt: str, secret: str, algorithm: str) -> "hmac.HMAC":
    hasher = getattr(hashlib, algorithm)
    key = hasher((key_salt + secret).encode("utf-8")).digest()
    return hmac.new(key, digestmod=hasher)


def _signature(user_id: int, course_id: str, secret: str) -> str:
    value = f"{user_id}\n{course_id}"
    digest = salted_hmac_digest(KEY_SALT, value, secret=secret, algorithm="sha256")
    return _b64encode(digest[:SIGNATURE_BYTES])


@lru_cache(maxsize=64)
def _course_part(course_id: str) -> str:
    # The same for every message of a send: worked out once.
    return _b64encode(course_id.encode("utf-8"))


def make_token(user_id: int, course_id: str) -> str:
    """The URL-safe token that lets ``user_id`` unsubscribe from ``course_id``."""
    course_part = _course_part(course_id)
    signature = _signature(user_id, course_id, settings.SECRET_KEY)
    return SEPARATOR.join((int_to_base36(user_id), course_part, signature))


def _split(token: str) -> tuple[int, str, str]:
    try:
        user_part, course_part, signature = token.split(SEPARATOR)
        return base36_to_int(user_part), _b64decode(course_part).decode("utf-8"), signature
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidTokenError("This unsubscribe link is incomplete or damaged.") from error


def _signed_by_a_known_secret(user_id: int, course_id: str, signature: str) -> bool:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return any(
        constant_time_compare(signature, _signature(user_id, course_id, secret))
        for secret in secrets
    )


def read_token(token: str, *, course_id: str | None = None) -> UnsubscribeToken:
    """The user and course a token was made for; InvalidTokenError when it is not genuine,
    or when ``course_id`` is given and the token is for another course."""
    user_id, token_course_id, signature = _split(token)
    if not _signed_by_a_known_secret(user_id, token_course_id, signature):
        raise InvalidTokenError("This unsubscribe link is not valid.")
    if course_id is not None and course_id != token_course_id:
        raise InvalidTokenError("This unsubscribe link is for another course.")
    return UnsubscribeToken(user_id=user_id, course_id=token_course_id)


# --- Tokens in an address's local part (VERP and the List-Unsubscribe mailto) ----------------
#
# "bounces+<user>-<task>-<signature>@FEEDBACK_DOMAIN": user and task ids in base36, the
# signature 80 bits in lower-case base32. Lower case and digits only, because mail systems
# may change the case of a local part, and at most ~40 characters, far within its 64.

ADDRESS_SIGNATURE_BYTES = 10
BOUNCE = "bounces"
UNSUBSCRIBE = "unsubscribe"
ADDRESS_PURPOSES = (BOUNCE, UNSUBSCRIBE)


@dataclass(frozen=True)
class AddressToken:
    purpose: str  # BOUNCE or UNSUBSCRIBE
    user_id: int
    task_id: int


def _address_signature(purpose: str, user_id: int, task_id: int, secret: str) -> str:
    value = f"{purpose}\n{user_id}\n{task_id}"
    digest = salted_hmac_digest(f"bulk_email.tokens.{purpose}", value, secret=secret,
                                algorithm="sha256")  # fmt: skip
    return _base32_lower(digest[:ADDRESS_SIGNATURE_BYTES])


_BASE32_DIGITS = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648's alphabet, lower case
# Every pair of base32 digits, by the 10 bits they encode.
_BASE32_PAIRS = [first + second for first in _BASE32_DIGITS for second in _BASE32_DIGITS]


def _base32_lower(ten_bytes: bytes) -> str:
    """``base64.b32encode(ten_bytes).decode().lower()``, the same 16 characters at a third of
    the cost (that one is pure Python): it runs twice per message sent with VERP."""
    number, pairs = int.from_bytes(ten_bytes, "big"), _BASE32_PAIRS
    return "".join([pairs[(number >> shift) & 1023] for shift in (70, 60, 50, 40, 30, 20, 10, 0)])


@lru_cache(maxsize=64)
def _task_part(task_id: int) -> str:
    # The same for every message of a batch: worked out once.
    return int_to_base36(task_id)


def make_address_token(purpose: str, user_id: int, task_id: int) -> str:
    signature = _address_signature(purpose, user_id, task_id, settings.SECRET_KEY)
    return f"{int_to_base36(user_id)}-{_task_part(task_id)}-{signature}"


def feedback_address(purpose: str, user_id: int, task_id: int, domain: str) -> str:
    """``bounces+TOKEN@domain`` or ``unsubscribe+TOKEN@domain``."""
    return f"{purpose}+{make_address_token(purpose, user_id, task_id)}@{domain}"


def read_feedback_address(address: str) -> AddressToken:
    """The purpose, user and task a feedback address was made for; InvalidTokenError when it
    is not one of ours, damaged, or forged."""
    local = address.strip().strip("<>").rpartition("@")[0].lower()
    purpose, plus, token = local.partition("+")
    if not plus or purpose not in ADDRESS_PURPOSES:
        raise InvalidTokenError("Not a feedback address of this site.")
    try:
        user_part, task_part, signature = token.split("-")
        user_id, task_id = base36_to_int(user_part), base36_to_int(task_part)
    except ValueError as error:
        raise InvalidTokenError("This feedback address is incomplete or damaged.") from error
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not any(
        constant_time_compare(signature, _address_signature(purpose, user_id, task_id, secret))
        for secret in secrets
    ):
        raise InvalidTokenError("This feedback address is not valid.")
    return AddressToken(purpose=purpose, user_id=user_id, task_id=task_id)


# --- Message-IDs -------------------------------------------------------------------------
#
# "<HMAC.email_id.user_id@domain>": the same (email, recipient) always gets the same id, so
# the one copy a crash may send twice is one message to clients that de-duplicate by it, and
# a bounce or complaint that quotes the original's Message-ID names its email and learner.
# The HMAC (64 bits, hex) is what makes that name trustworthy: it is checked, never assumed.

MESSAGE_ID_SALT = "bulk_email.message_id"
MESSAGE_ID_HEX_DIGITS = 16


def _message_id_signature(email_id: int, user_id: int, secret: str) -> str:
    digest = salted_hmac_digest(MESSAGE_ID_SALT, f"{email_id}:{user_id}", secret=secret,
                                algorithm="sha1")  # fmt: skip
    return digest.hex()[:MESSAGE_ID_HEX_DIGITS]


def make_message_id(email_id: int, user_id: int, domain: str) -> str:
    """``<HMAC.email_id.user_id@domain>`` for a saved email's message to ``user_id``."""
    signature = _message_id_signature(email_id, user_id, settings.SECRET_KEY)
    return f"<{signature}.{email_id}.{user_id}@{domain}>"


def read_message_id(message_id: str) -> tuple[int, int] | None:
    """(email id, user id) of a Message-ID this site made; None for anyone else's, a damaged
    one or a forged one. Any domain is accepted: the signature alone proves it ours."""
    local = message_id.strip().strip("<>").rpartition("@")[0]
    signature, _, ids = local.partition(".")
    email_part, _, user_part = ids.partition(".")
    if not (email_part.isdigit() and user_part.isdigit() and email_part.isascii()):
        return None
    if len(email_part) > 18 or len(user_part) > 18 or not user_part.isascii():
        return None  # beyond a bigint: not one of ours
    email_id, user_id = int(email_part), int(user_part)
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if any(
        constant_time_compare(signature, _message_id_signature(email_id, user_id, secret))
        for secret in secrets
    ):
        return email_id, user_id
    return None
