import sys

import pytest
from django.test import override_settings

from bulk_email import checks

VALID = {
    "LMS_BACKEND": "lms_stub.bulk_email_backend.StubLMSBackend",
    "SITE_URL": "http://x",
    "FEEDBACK_DOMAIN": "feedback.example.com",
}


IMAP = {"host": "imap.example.com", "user": "bounces", "password": "secret"}


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def run_all() -> list[str]:
    found = []
    for check in (
        checks.check_lms_backend,
        checks.check_numbers,
        checks.check_schedule_horizon,
        checks.check_html_nesting,
        checks.check_redis_key_prefix,
        checks.check_site_url,
        checks.check_dkim,
        checks.check_queues,
        checks.check_feedback_domain,
        checks.check_esp_webhooks,
        checks.check_feedback_mailbox,
        checks.check_unknown_names,
    ):
        found += ids(check())
    return found


def test_the_site_settings_pass_every_check(settings):
    """The demo site reads no feedback unless BULK_EMAIL_FEEDBACK_DOMAIN is set: that one
    warning, and nothing with it set."""
    assert run_all() == ["bulk_email.W002"]
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "FEEDBACK_DOMAIN": "feedback.example.com"}
    assert run_all() == []


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"LMS_BACKEND": None}, "bulk_email.E001"),
        ({"LMS_BACKEND": "no.such.Backend"}, "bulk_email.E002"),
        ({"LMS_BACKEND": "bulk_email.models.Optout"}, "bulk_email.E003"),
        ({"EMAILS_PER_TASK": 0}, "bulk_email.E004"),
        ({"MAX_MESSAGES_PER_CONNECTION": "300"}, "bulk_email.E004"),
        ({"LAST_LOGIN_ELIGIBILITY_MONTHS": -1}, "bulk_email.E005"),
        ({"MAX_SEND_RATE": 0}, "bulk_email.E006"),
        ({"RETRY_MAX_DELAY": 0}, "bulk_email.E009"),
        ({"MAX_SCHEDULE_DAYS": 0}, "bulk_email.E010"),
        ({"MAX_SCHEDULE_DAYS": 10**9}, "bulk_email.E010"),
        ({"MAX_SCHEDULE_DAYS": "365"}, "bulk_email.E010"),
        ({"REDIS_KEY_PREFIX": ""}, "bulk_email.E011"),
        ({"MAX_HTML_NESTING": 0}, "bulk_email.E012"),
        ({"MAX_HTML_NESTING": 100_000}, "bulk_email.E012"),
        ({"MAX_HTML_ELEMENTS": 0}, "bulk_email.E004"),
        ({"REDIS_KEY_PREFIX": 7}, "bulk_email.E011"),
        ({"PROGRESS_CHECKPOINT_SECONDS": "1"}, "bulk_email.E009"),
        ({"HISTORY_REFRESH_SECONDS": 0}, "bulk_email.E009"),
        ({"ADDRESS_TEST_LIMIT_PER_HOUR": 0}, "bulk_email.E004"),
        ({"SITE_URL": "lms.example.com"}, "bulk_email.E007"),
        ({"DKIM": {"domain": "example.com"}}, "bulk_email.E008"),
        ({"EMAIL_PER_TASK": 5}, "bulk_email.W001"),
        ({"UNSUBSCRIBE_MAILTO": "unsub@example.com"}, "bulk_email.W001"),  # removed setting
        ({"QUEUE": ""}, "bulk_email.E020"),
        ({"LARGE_QUEUE": "large queue"}, "bulk_email.E020"),
        ({"QUEUE": None}, "bulk_email.E020"),
        ({"FEEDBACK_DOMAIN": None}, "bulk_email.W002"),
        ({"FEEDBACK_DOMAIN": ""}, "bulk_email.W002"),
        ({"FEEDBACK_IMAP": {"host": "imap.example.com"}}, "bulk_email.E030"),
        ({"FEEDBACK_IMAP": {**IMAP, "ssl": False}}, "bulk_email.E030"),
        ({"FEEDBACK_IMAP": "imaps://u:p@imap.example.com/"}, "bulk_email.E030"),
        ({"FEEDBACK_IMAP": IMAP, "FEEDBACK_MAILDIR": "/tmp"}, "bulk_email.E030"),
        ({"FEEDBACK_MAILDIR": "/nonexistent/maildir"}, "bulk_email.W030"),
        ({"FEEDBACK_POLL_LIMIT": 0}, "bulk_email.E004"),
    ],
)
def test_each_misconfiguration_is_reported_with_its_id(override, expected):
    with override_settings(BULK_EMAIL={**VALID, **override}):
        assert run_all() == [expected]


def test_checks_run_through_djangos_framework():
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    with (
        override_settings(BULK_EMAIL={**VALID, "LMS_BACKEND": None}),
        pytest.raises(SystemCheckError, match=r"bulk_email\.E001"),
    ):
        call_command("check")


def test_checks_honour_app_configs(settings):
    from django.apps import apps

    settings.BULK_EMAIL = {"LMS_BACKEND": None, "NOT_A_SETTING": 1, "FEEDBACK_IMAP": {"x": 1}}
    others = [apps.get_app_config("auth")]
    for check in (
        checks.check_lms_backend,
        checks.check_unknown_names,
        checks.check_feedback_domain,
        checks.check_feedback_mailbox,
    ):
        assert check(app_configs=others) == []
        assert check(app_configs=[apps.get_app_config("bulk_email")])
        assert check(app_configs=None)


@pytest.mark.parametrize(
    "mailbox",
    [{"FEEDBACK_IMAP": IMAP}, {"FEEDBACK_IMAP": {**IMAP, "ssl": False, "starttls": True}}],
)
def test_a_usable_imap_mailbox_passes(mailbox):
    with override_settings(BULK_EMAIL={**VALID, **mailbox}):
        assert run_all() == []


def test_a_maildir_passes(tmp_path):
    for sub in ("new", "cur", "tmp"):
        (tmp_path / sub).mkdir()
    with override_settings(BULK_EMAIL={**VALID, "FEEDBACK_MAILDIR": str(tmp_path)}):
        assert run_all() == []


def test_a_beat_entry_sending_dispatch_to_a_queue_no_documented_worker_reads_is_reported(
    settings,
):
    schedule = {"bulk-email-dispatch": {"task": "bulk_email.tasks.dispatch", "schedule": 5.0}}
    settings.CELERY_BEAT_SCHEDULE = schedule
    assert checks.check_queues() == []
    schedule["bulk-email-dispatch"]["options"] = {"queue": "celery"}
    (warning,) = checks.check_queues()
    assert warning.id == "bulk_email.W020" and "'celery'" in warning.msg
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "QUEUE": "celery"}
    assert checks.check_queues() == []


# --- ESP webhooks ------------------------------------------------------------------------

WEBHOOKS_ON = {**VALID, "ESP_WEBHOOKS": True}


def test_esp_webhooks_with_anymail_its_urls_and_a_secret_pass(settings):
    settings.BULK_EMAIL = WEBHOOKS_ON
    settings.ANYMAIL = {"WEBHOOK_SECRET": "esp:long-random-password"}
    assert checks.check_esp_webhooks() == []
    settings.ANYMAIL = {"WEBHOOK_SECRET": ["esp:new-password", "esp:old-password"]}  # rotation
    assert checks.check_esp_webhooks() == []


def test_esp_webhooks_off_need_nothing(settings):
    settings.BULK_EMAIL = VALID
    settings.ANYMAIL = {}
    assert checks.check_esp_webhooks() == []


def test_esp_webhooks_without_anymail_name_the_extra(settings, monkeypatch):
    settings.BULK_EMAIL = WEBHOOKS_ON
    monkeypatch.setitem(sys.modules, "anymail.signals", None)  # as if not installed
    (error,) = checks.check_esp_webhooks()
    assert error.id == "bulk_email.E013"
    assert "bulk_email[anymail]" in error.hint


@pytest.mark.parametrize(
    "anymail",
    [{}, {"WEBHOOK_SECRET": ""}, {"WEBHOOK_SECRET": "no-colon"}, {"WEBHOOK_SECRET": [None]}],
)
def test_esp_webhooks_without_a_user_password_secret_are_refused(settings, anymail):
    settings.BULK_EMAIL = WEBHOOKS_ON
    settings.ANYMAIL = anymail
    assert ids(checks.check_esp_webhooks()) == ["bulk_email.E014"]


def test_esp_webhooks_without_anymails_urls_are_reported(settings):
    settings.BULK_EMAIL = WEBHOOKS_ON
    settings.ANYMAIL = {"WEBHOOK_SECRET": "esp:long-random-password"}
    settings.ROOT_URLCONF = "bulk_email.urls"
    (warning,) = checks.check_esp_webhooks()
    assert warning.id == "bulk_email.W013"
    assert 'include("anymail.urls")' in warning.hint


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TEMPLATE_BY_ORG", ["mitx"]),
        ("TEMPLATE_BY_COURSE", {"c": 3}),
        ("FROM_ADDRESSES_BY_ORG", {"MITx": []}),
        ("FROM_ADDRESSES_BY_COURSE", {"c": ["News <news@x.example>\r\nBcc: y@z.example"]}),
        ("FROM_ADDRESSES_BY_COURSE", {"c": "news@x.example"}),
    ],
)
def test_sender_settings_of_the_wrong_shape_are_errors(settings, name, value):
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, name: value}
    assert [e.id for e in checks.check_sender_settings()] == ["bulk_email.E021"]


def test_sender_settings_as_documented_pass(settings):
    settings.BULK_EMAIL = {
        **settings.BULK_EMAIL,
        "TEMPLATE_BY_ORG": {"MITx": "mitx-branded"},
        "FROM_ADDRESSES_BY_ORG": {"MITx": ["MITx <news@mitx.example>", "plain@mitx.example"]},
    }
    assert checks.check_sender_settings() == []


DKIM_RSA = {"domain": "lms.example.com", "selector": "bulk"}


@pytest.fixture(scope="module")
def rsa_pem():
    from tests.messages import make_dkim_key

    return make_dkim_key()[0].decode()


@pytest.mark.bad_input
@pytest.mark.parametrize(
    ("dkim", "expected", "said"),
    [
        ({"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA"}, "E016", "not an unencrypted PEM"),
        ({"private_key": 42}, "E016", "not text"),
        ({"private_key": "RSA", "selector": "bulk;x"}, "E016", "not a DNS name"),
        ({"private_key": "RSA", "ed25519_selector": "ed"}, "E017", "needs both"),
        (
            {"private_key": "RSA", "ed25519_selector": "ed", "ed25519_private_key": "seed"},
            "E017",
            "neither a PEM private key nor",
        ),
        ({"private_key": "RSA", "ed25519_selector": "ed", "ed25519_private_key": "RSA"}, "E017",
         "not an Ed25519 key"),
    ],
)  # fmt: skip
def test_a_dkim_key_that_cannot_sign_is_reported_with_the_reason(rsa_pem, dkim, expected, said):
    dkim = {k: rsa_pem if v == "RSA" else v for k, v in {**DKIM_RSA, **dkim}.items()}
    with override_settings(BULK_EMAIL={**VALID, "DKIM": dkim}):
        messages = checks.check_dkim()
    assert ids(messages) == [f"bulk_email.{expected}"]
    assert said in messages[0].msg and messages[0].hint


def test_good_dkim_keys_pass_the_checks(rsa_pem):
    from tests.messages import make_ed25519_key

    ed25519 = make_ed25519_key()[0]
    dkim = {**DKIM_RSA, "private_key": rsa_pem}
    for config in (dkim, {**dkim, "ed25519_selector": "ed", "ed25519_private_key": ed25519}):
        with override_settings(BULK_EMAIL={**VALID, "DKIM": config}):
            assert checks.check_dkim() == []
