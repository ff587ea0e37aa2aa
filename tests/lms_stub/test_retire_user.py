"""lms_stub's retire_user command: bulk_email's part first, then the account's."""

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from bulk_email.models import Optout, Suppression
from tests.factories import enroll, make_course, make_user, suppress

pytestmark = pytest.mark.django_db


def test_retire_user_erases_bulk_email_rows_by_the_old_address_then_the_account(capsys):
    learner = make_user("zoe", email="Zoe@Example.com", name="Zoë")
    course = make_course()
    enroll(learner, course)
    suppress("zoe@example.com")
    call_command("retire_user", "zoe")
    learner.refresh_from_db()
    assert not Suppression.objects.exists()
    assert Optout.objects.get(user=learner).course_id == course.id
    assert learner.email.endswith("@retired.invalid") and not learner.is_active
    assert learner.lms_profile.name == "" and "zoe" not in learner.username
    out = capsys.readouterr().out
    assert "opted out of 1 more course;" in out and "1 suppression erased;" in out
    assert "0 feedback events anonymized." in out


def test_retire_user_says_each_count_in_its_own_plural_form_in_french(capsys):
    learner = make_user("zoe", email="zoe@example.com")
    enroll(learner, make_course())
    suppress("zoe@example.com")
    with translation.override("fr"):
        call_command("retire_user", "zoe")
    out = capsys.readouterr().out
    assert "1 suppression effacée" in out and "0 retour anonymisé" in out, out
    assert "(s)" not in out


def test_an_unknown_user_is_named_and_nothing_changes():
    with pytest.raises(CommandError, match="There is no user 'nobody'"):
        call_command("retire_user", "nobody")
