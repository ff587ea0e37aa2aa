import pytest
from django.test import override_settings

from bulk_email import checks

VALID = {
    "LMS_BACKEND": "lms_stub.bulk_email_backend.StubLMSBackend",
    "SITE_URL": "http://x",
    "FEEDBACK_DOMAIN": "feedback.example.com",
}


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

    settings.BULK_EMAIL = {"LMS_BACKEND": None, "NOT_A_SETTING": 1}
    others = [apps.get_app_config("auth")]
    for check in (
        checks.check_lms_backend,
        checks.check_unknown_names,
        checks.check_feedback_domain,
    ):
        assert check(app_configs=others) == []
        assert check(app_configs=[apps.get_app_config("bulk_email")])
        assert check(app_configs=None)


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
