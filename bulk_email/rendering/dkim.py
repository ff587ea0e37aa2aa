"""Optional DKIM signing (the "dkim" extra): RFC 6376 relaxed/relaxed with rsa-sha256, and
optionally a second, ed25519-sha256 signature (RFC 8463) on each message.

Everything that is the same for every recipient of an email is done once: the keys are
parsed once per process (``loaded_signer``, cached on the settings' values) and the
signature's tag text (v, a, c, d, s, h) is built then. Per message there is only what must
be: the canonical body and its SHA-256, the signed header fields canonicalized and hashed,
and the private-key operation, which OpenSSL does (``cryptography``). The whole step costs
~0.35 ms of CPU a message with RSA-2048 where dkimpy's pure-Python RSA took ~8 ms
(bench/bench_dkim.py; docs/dkim.md). The canonicalization is dkimpy's
(``dkim.canonicalization``), its regular expressions skipped where they would change
nothing; the tests verify every signature with dkimpy and with OpenDKIM.
"""

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

from .. import app_settings
from ..exceptions import BulkEmailConfigurationError

# Signed even when absent (an absent field is hashed as nothing, RFC 6376 5.4), so that a
# relay cannot add one later without breaking the signature.
DKIM_SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe",
    b"list-unsubscribe-post", b"list-id", b"mime-version", b"content-type",
)  # fmt: skip

RSA_MIN_BITS = 1024  # RFC 8301 3.2: signers MUST use at least 1024 bits (and SHOULD 2048)
CRLF = b"\r\n"


@dataclass(frozen=True)
class DkimSignature:
    """One signer: the constant start of its header field (up to bh=) and its private-key
    operation over the canonicalized header data."""

    header_start: bytes  # "DKIM-Signature: v=1; a=...; c=...; d=...; s=...; h=...; bh="
    sign: Callable[[bytes], bytes]

    def header(self, body_hash: bytes, signed_headers: bytes) -> bytes:
        """The whole DKIM-Signature field, CRLF-ended. ``signed_headers``: the selected
        fields, relaxed, in h= order."""
        unsigned = self.header_start + body_hash + b";\r\n b="
        # The field itself is hashed last: relaxed like the others, with b= empty and
        # without its final CRLF (RFC 6376 3.7).
        field = relaxed_headers([unsigned.partition(b":")[::2]])[: -len(CRLF)]
        signature = base64.b64encode(self.sign(signed_headers + field))
        return unsigned + folded(signature) + CRLF


@dataclass(frozen=True)
class DkimSigner:
    """What signs an email's messages: the RSA signature, and the Ed25519 one when set."""

    signatures: tuple[DkimSignature, ...]
    canonicalization: ModuleType  # dkimpy's dkim.canonicalization

    def signature_headers(self, message: bytes) -> bytes:
        """The DKIM-Signature field(s) to put before ``message`` (CRLF line ends)."""
        head, body = split_message(message)
        canonical_body = relaxed_body(body, self.canonicalization)
        body_hash = base64.b64encode(hashlib.sha256(canonical_body).digest())
        signed = relaxed_headers(select_headers(parse_headers(head), DKIM_SIGNED_HEADERS))
        return b"".join(s.header(body_hash, signed) for s in self.signatures)


# --- Once per process: the keys -----------------------------------------------------------------


def dkim_key() -> DkimSigner | None:
    """The signer for BULK_EMAIL["DKIM"], or None when DKIM is off. A missing value, a key
    that is not what it should be, or the "dkim" extra not installed: a configuration error
    that says which."""
    config = app_settings.get("DKIM")
    if not config:
        return None
    try:
        domain, selector, private_key = (config[k] for k in ("domain", "selector", "private_key"))
    except (KeyError, TypeError) as error:
        raise BulkEmailConfigurationError(
            'BULK_EMAIL["DKIM"] needs "domain", "selector" and "private_key" (PEM).'
        ) from error
    ed25519 = (config.get("ed25519_selector"), config.get("ed25519_private_key"))
    if any(ed25519) and not all(ed25519):
        raise BulkEmailConfigurationError(
            'BULK_EMAIL["DKIM"] needs both "ed25519_selector" and "ed25519_private_key" '
            "for the Ed25519 signature, or neither."
        )
    return loaded_signer(
        *(as_text(v) for v in (domain, selector, private_key)), *(as_text(v) for v in ed25519)
    )


def as_text(value: str | bytes | None) -> str | None:
    """A setting's value as text: str, bytes (UTF-8) or None; anything else is refused."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError as error:
            raise BulkEmailConfigurationError(
                'A BULK_EMAIL["DKIM"] value is not UTF-8 text (keys go in as PEM text).'
            ) from error
    if value is not None and not isinstance(value, str):
        raise BulkEmailConfigurationError(
            f'A BULK_EMAIL["DKIM"] value is a {type(value).__name__}, not text.'
        )
    return value


@lru_cache(maxsize=8)
def loaded_signer(
    domain: str, selector: str, private_key: str, ed25519_selector=None, ed25519_private_key=None
) -> DkimSigner:
    """Keys parsed once per process (parsing and checking an RSA key costs milliseconds)."""
    # dkimpy's package, not dkim.canonicalization directly: an import of the submodule
    # would succeed from sys.modules even where the package is blocked or half installed.
    dkimpy = app_settings.import_optional("dkim", extra="dkim")
    signatures = [
        DkimSignature(header_start(b"rsa-sha256", domain, selector), rsa_signer(private_key))
    ]
    if ed25519_selector:
        start = header_start(b"ed25519-sha256", domain, ed25519_selector)
        signatures.append(DkimSignature(start, ed25519_signer(ed25519_private_key)))
    return DkimSigner(tuple(signatures), dkimpy.canonicalization)


def header_start(algorithm: bytes, domain: str, selector: str) -> bytes:
    for name, value in (("domain", domain), ("selector", selector)):
        if not value or any(c in value for c in ";= \t\r\n") or not value.isascii():
            raise BulkEmailConfigurationError(
                f'BULK_EMAIL["DKIM"] {name} {value!r} is not a DNS name (ASCII, in IDNA form).'
            )
    return (
        b"DKIM-Signature: v=1; a=" + algorithm + b"; c=relaxed/relaxed;\r\n"
        b" d=" + domain.encode() + b"; s=" + selector.encode() + b";\r\n"
        b" h=" + b":".join(DKIM_SIGNED_HEADERS) + b";\r\n bh="
    )


def crypto(module: str):
    """A module of ``cryptography`` (OpenSSL), or the error naming the "dkim" extra."""
    return app_settings.import_optional(f"cryptography.hazmat.primitives.{module}", extra="dkim")


def rsa_signer(pem: str) -> Callable[[bytes], bytes]:
    """RSASSA-PKCS1-v1_5 with SHA-256 by the key of a PEM text (PKCS#1 or PKCS#8)."""
    key = rsa_key(pem)
    padding, sha256 = crypto("asymmetric.padding").PKCS1v15(), crypto("hashes").SHA256()
    return lambda data: key.sign(data, padding, sha256)


def ed25519_signer(text: str) -> Callable[[bytes], bytes]:
    """RFC 8463 3: Ed25519 (pure) over the SHA-256 of the canonicalized header data."""
    key = ed25519_key(text)
    return lambda data: key.sign(hashlib.sha256(data).digest())


def rsa_key(pem: str):
    """The RSA private key of a PEM text (PKCS#1 or PKCS#8, unencrypted)."""
    serialization, rsa = crypto("serialization"), crypto("asymmetric.rsa")

    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise BulkEmailConfigurationError(
            'BULK_EMAIL["DKIM"] private_key is not an unencrypted PEM private key '
            f"({first_line(error)})."
        ) from error
    if not isinstance(key, rsa.RSAPrivateKey):
        raise BulkEmailConfigurationError(
            'BULK_EMAIL["DKIM"] private_key is not an RSA key (rsa-sha256); an Ed25519 key '
            'goes in "ed25519_private_key".'
        )
    if key.key_size < RSA_MIN_BITS:
        raise BulkEmailConfigurationError(
            f'BULK_EMAIL["DKIM"] private_key has {key.key_size} bits; DKIM needs at least '
            f"{RSA_MIN_BITS} (RFC 8301), 2048 advised."
        )
    return key


def ed25519_key(text: str):
    """The Ed25519 private key of a PEM text (PKCS#8), or of the base64 32-byte seed that
    dkimpy's ``dknewkey --ktype ed25519`` writes."""
    serialization, ed25519 = crypto("serialization"), crypto("asymmetric.ed25519")

    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            seed = base64.b64decode(text, validate=True)
            key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    except (ValueError, TypeError) as error:
        raise BulkEmailConfigurationError(
            'BULK_EMAIL["DKIM"] ed25519_private_key is neither a PEM private key nor the '
            f"base64 of a 32-byte Ed25519 seed ({first_line(error)})."
        ) from error
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise BulkEmailConfigurationError(
            'BULK_EMAIL["DKIM"] ed25519_private_key is not an Ed25519 key.'
        )
    return key


def first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# --- Per message: parse, select, canonicalize ----------------------------------------------------


def split_message(message: bytes) -> tuple[bytes, bytes]:
    """(header block with its last CRLF, body). No blank line: all header, empty body. A
    body is taken with the final CRLF that SMTP's DATA gives every message, so that a last
    line's trailing whitespace is dropped as the receiver will drop it."""
    head, blank, body = message.partition(b"\r\n\r\n")
    if not blank:
        return (message if message.endswith(CRLF) else message + CRLF), b""
    if body and not body.endswith(CRLF):
        body += CRLF
    return head + CRLF, body


# dkimpy's relaxed canonicalization is a few regular expressions, each over the whole body or
# value. Over an 8 KB body they cost ~0.4 ms (every single space is a match), a third of the
# budget; where they would change nothing (no tab, no two spaces in a row, no space before a
# line end; no fold) they are not run. Same results: the tests compare both with dkimpy's.
UNFOLD = re.compile(rb"\r?\n")
WSP_RUN = re.compile(rb"[ \t]+")


def relaxed_body(body: bytes, canonicalization: ModuleType) -> bytes:
    """RFC 6376 3.4.4, dkimpy's ``Relaxed.canonicalize_body`` when there is whitespace to
    compress or strip; else only the empty lines at the end go (its own functions)."""
    if b"\t" in body or b"  " in body or b" \r\n" in body:
        return canonicalization.Relaxed.canonicalize_body(body)
    return canonicalization.correct_empty_body(canonicalization.strip_trailing_lines(body))


def relaxed_headers(fields) -> bytes:
    """RFC 6376 3.4.2, as dkimpy's ``Relaxed.canonicalize_headers``: name lower-cased,
    value unfolded, WSP runs one space, trimmed; each field CRLF-ended."""
    canonical = []
    for name, value in fields:
        if b"\n" in value:
            value = UNFOLD.sub(b"", value)
        if b"\t" in value or b"  " in value:
            value = WSP_RUN.sub(b" ", value)
        canonical.append(name.lower().rstrip() + b":" + value.strip() + CRLF)
    return b"".join(canonical)


def parse_headers(head: bytes) -> list[tuple[bytes, bytes]]:
    """(name, value) of each field, value as written after the colon, folds and CRLF kept."""
    fields: list[list[bytes]] = []
    for line in head.split(CRLF)[:-1]:
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1] += CRLF + line
        else:
            name, colon, value = line.partition(b":")
            if colon:
                fields.append([name, value])
    return [(name, value + CRLF) for name, value in fields]


def select_headers(headers, names) -> list[tuple[bytes, bytes]]:
    """The fields h= signs, in h= order: for each name, the last field of that name not yet
    taken (RFC 6376 5.4.2); absent ones are skipped (hashed as nothing)."""
    lowered = [name.lower().rstrip() for name, _ in headers]
    taken_below: dict[bytes, int] = {}
    selected = []
    for wanted in names:
        index = taken_below.get(wanted, len(headers))
        while index > 0:
            index -= 1
            if lowered[index] == wanted:
                selected.append(headers[index])
                break
        taken_below[wanted] = index
    return selected


def folded(signature: bytes, width: int = 72) -> bytes:
    """b= over several lines (whitespace in b= is ignored when verifying)."""
    return b"\r\n  ".join(signature[i : i + width] for i in range(0, len(signature), width))


def dkim_sign(message: bytes, signer: DkimSigner) -> bytes:
    """The DKIM-Signature header field(s) for ``message``."""
    return signer.signature_headers(message)
