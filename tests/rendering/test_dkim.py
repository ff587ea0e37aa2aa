import re
import sys

import dkim
import pytest

from bulk_email.exceptions import BulkEmailConfigurationError
from bulk_email.rendering import render_message
from tests.messages import make_dkim_key, prepare
from tests.rendering.mail import LEARNER


@pytest.fixture(scope="session")
def dkim_key():
    return make_dkim_key()


def test_a_dkim_signature_verifies(settings, dkim_key):
    private_pem, dns_record = dkim_key
    settings.BULK_EMAIL = {
        **settings.BULK_EMAIL,
        "DKIM": {"domain": "lms.example.com", "selector": "bulk", "private_key": private_pem},
    }
    raw = render_message(prepare(), LEARNER).as_bytes()
    assert raw.startswith(b"DKIM-Signature:")

    def dns(name, timeout=5):
        assert name == b"bulk._domainkey.lms.example.com."
        return dns_record

    assert dkim.verify(raw, dnsfunc=dns)
    signed = re.search(rb"h=([^;]+);", raw.replace(b"\r\n ", b"")).group(1).decode().lower()
    for header in ("from", "subject", "list-unsubscribe", "list-unsubscribe-post"):
        assert header in signed.replace(" ", "").split(":")
    one_click = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    tampered = raw.replace(one_click, b"List-Unsubscribe-Post: x")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_signing_without_the_dkim_package_says_which_extra_to_install(settings, monkeypatch):
    settings.BULK_EMAIL = {
        **settings.BULK_EMAIL,
        "DKIM": {"domain": "lms.example.com", "selector": "bulk", "private_key": "PEM"},
    }
    monkeypatch.setitem(sys.modules, "dkim", None)  # what an import finds when not installed
    with pytest.raises(BulkEmailConfigurationError, match=re.escape("bulk_email[dkim]")):
        prepare()  # the keys are loaded once per email, not per message
