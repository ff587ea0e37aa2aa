import pytest

from tests.messages import prepare


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def smtp_sink(request):
    """Every test here runs against a server that offers PIPELINING (the two-round-trip path)
    and one that does not (smtplib's sendmail)."""
    from lms_stub.smtp_sink import SMTPSink

    with SMTPSink(pipelining=request.param) as sink:
        yield sink


@pytest.fixture
def prepared():
    return prepare()


@pytest.fixture
def fake_anymail(monkeypatch):
    """django-anymail's exceptions module, as much of it as bulk_email uses (anymail is not a
    dependency): the backend transport imports it lazily, when it is installed."""
    import sys
    import types

    from bulk_email.sending import transports

    exceptions = types.ModuleType("anymail.exceptions")

    class AnymailError(Exception):
        pass

    class AnymailRecipientsRefused(AnymailError):
        pass

    class AnymailInvalidAddress(AnymailError, ValueError):
        pass

    for error_class in (AnymailError, AnymailRecipientsRefused, AnymailInvalidAddress):
        setattr(exceptions, error_class.__name__, error_class)
    package = types.ModuleType("anymail")
    package.exceptions = exceptions
    monkeypatch.setitem(sys.modules, "anymail", package)
    monkeypatch.setitem(sys.modules, "anymail.exceptions", exceptions)
    transports.anymail_recipient_errors.cache_clear()
    yield exceptions
    transports.anymail_recipient_errors.cache_clear()
