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
