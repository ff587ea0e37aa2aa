import pytest
from django.test import override_settings

from bulk_email import app_settings


def test_defaults_apply_when_the_site_sets_nothing():
    with override_settings(BULK_EMAIL={}):
        assert app_settings.get("EMAILS_PER_TASK") == 500
        assert app_settings.get("LAST_LOGIN_ELIGIBILITY_MONTHS") == 18


def test_site_values_are_read_on_access():
    with override_settings(BULK_EMAIL={"EMAILS_PER_TASK": 7}):
        assert app_settings.get("EMAILS_PER_TASK") == 7
    assert app_settings.get("EMAILS_PER_TASK") == 500


def test_none_is_a_value_not_a_missing_key():
    with override_settings(BULK_EMAIL={"LAST_LOGIN_ELIGIBILITY_MONTHS": None}):
        assert app_settings.get("LAST_LOGIN_ELIGIBILITY_MONTHS") is None


def test_unknown_setting_name_is_a_programming_error():
    with pytest.raises(KeyError):
        app_settings.get("EMAILS_PER_TASKS")


def test_unknown_names_lists_typos():
    with override_settings(BULK_EMAIL={"EMAILS_PER_TAKS": 1, "SITE_URL": "http://x"}):
        assert app_settings.unknown_names() == ["EMAILS_PER_TAKS"]


# --- The Redis key prefix: one per site ----------------------------------------------------------


def databases(name: str, host: str = "db.internal") -> dict:
    return {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": name, "HOST": host}}


def test_the_redis_key_prefix_differs_per_site_database_and_agrees_within_one():
    prefixes = {}
    for site in (("lms", "db.internal"), ("lms", "db2.internal"), ("lms_staging", "db.internal")):
        with override_settings(BULK_EMAIL={}, DATABASES=databases(*site)):
            prefixes[site] = app_settings.redis_key_prefix()
    assert len(set(prefixes.values())) == 3
    with override_settings(BULK_EMAIL={}, DATABASES=databases("lms")):
        assert app_settings.redis_key_prefix() == prefixes[("lms", "db.internal")]
    assert all(p.startswith("bulk_email:") and p.endswith(":") for p in prefixes.values())


def test_the_redis_key_prefix_is_a_setting():
    with override_settings(BULK_EMAIL={"REDIS_KEY_PREFIX": "lms-a:"}):
        assert app_settings.redis_key_prefix() == "lms-a:"
