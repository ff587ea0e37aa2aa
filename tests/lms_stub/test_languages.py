"""lms_stub's language: the top bar's selector (the cookie, and the profile when signed in),
the profile's language at sign-in, lang and dir on every page, every word translated."""

import pytest
from django.conf import settings
from django.urls import reverse

from lms_stub.models import UserProfile
from tests.factories import enroll, make_sending_course, make_user

pytestmark = pytest.mark.django_db


def choose_language(client, language: str, next_url: str = "/dashboard/"):
    return client.post(reverse("set_language"), {"language": language, "next": next_url})


def test_the_selector_lists_the_sites_languages_in_their_own_names(client):
    page = client.get(reverse("login")).content.decode()
    assert '<option value="fr" lang="fr">Français</option>' in page
    assert '<option value="ar" lang="ar">العربية</option>' in page
    assert '<option value="en" lang="en" selected>English</option>' in page


def test_choosing_arabic_makes_pages_arabic_and_right_to_left(client):
    response = choose_language(client, "ar", "/login/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    page = client.get(reverse("login")).content.decode()
    assert '<html lang="ar" dir="rtl">' in page
    assert "تسجيل الدخول" in page and "Sign in" not in page


def test_signed_in_the_choice_is_saved_on_the_profile(client):
    user = make_user(password="pw")
    client.force_login(user)
    choose_language(client, "fr")
    assert UserProfile.objects.get(user=user).language == "fr"


@pytest.mark.parametrize("hostile", ["de", "", "fr\r\nX: y", "../ar", "x" * 300])
def test_a_language_the_site_does_not_have_changes_nothing(client, hostile):
    user = make_user(password="pw")
    client.force_login(user)
    response = choose_language(client, hostile)
    assert response.status_code == 302
    assert UserProfile.objects.get(user=user).language == ""
    # (Django's own set_language may still set a cookie for a language it knows, "de": the
    # middleware only ever activates one of settings.LANGUAGES.)
    page = client.get(reverse("dashboard")).content.decode()
    assert '<html lang="en" dir="ltr">' in page


def test_at_sign_in_the_profiles_language_becomes_the_sessions(client):
    user = make_user("amina", password="pw")
    UserProfile.objects.filter(user=user).update(language="ar")
    response = client.post(
        reverse("login"), {"username": "amina", "password": "pw"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ar"
    page = client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="ar" dir="rtl">' in page and "مقرراتي" in page


def test_the_dashboard_in_french_leaves_no_english_word(client):
    course = make_sending_course(display_name="Cours")
    user = make_user(password="pw")
    enroll(user, course)
    client.force_login(user)
    choose_language(client, "fr")
    page = client.get(reverse("dashboard")).content.decode()
    for english in ("My courses", "Email Settings", "Receive course emails", "Save", "Close",
                    "Sign out", "Dashboard", "Course email:", "track"):  # fmt: skip
        assert f">{english}<" not in page and f" {english}" not in page, english
    assert "Mes cours" in page and "Paramètres d\N{RIGHT SINGLE QUOTATION MARK}e-mail" in page
