"""Optional DKIM signing (the "dkim" extra): the key from ``BULK_EMAIL["DKIM"]``, read once
per email, and the signature of each recipient's message."""

from dataclasses import dataclass

from .. import app_settings
from ..exceptions import BulkEmailConfigurationError


@dataclass(frozen=True)
class DkimKey:
    domain: bytes
    selector: bytes
    private_key: bytes


def dkim_key() -> DkimKey | None:
    config = app_settings.get("DKIM")
    if not config:
        return None
    try:
        values = [config[k] for k in ("domain", "selector", "private_key")]
    except (KeyError, TypeError) as error:
        raise BulkEmailConfigurationError(
            'BULK_EMAIL["DKIM"] needs "domain", "selector" and "private_key" (PEM).'
        ) from error
    return DkimKey(*(v.encode() if isinstance(v, str) else v for v in values))


DKIM_SIGNED_HEADERS = [
    b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe",
    b"list-unsubscribe-post", b"list-id", b"mime-version", b"content-type",
]  # fmt: skip


def dkim_sign(message: bytes, key: DkimKey) -> bytes:
    """The DKIM-Signature header line(s) for ``message``. Without dkimpy installed: a
    configuration error that names the extra, not a bare ImportError."""
    dkim = app_settings.import_optional("dkim", extra="dkim")
    return dkim.sign(
        message,
        key.selector,
        key.domain,
        key.private_key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=DKIM_SIGNED_HEADERS,
        linesep=b"\r\n",
    )
