from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

import bulk_email.converters  # noqa: F401  (registers the course_key converter)

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("dashboard/", views.learner_dashboard, name="dashboard"),
    path(
        "courses/<course_key:course_id>/instructor/",
        views.instructor_dashboard,
        name="instructor_dashboard",
    ),
    path("email/", include("bulk_email.urls")),
    path("mailbox/", views.mailbox_list, name="mailbox"),
    path("mailbox/<str:name>/", views.mailbox_message, name="mailbox_message"),
    path("mailbox/<str:name>/html/", views.mailbox_message_html, name="mailbox_message_html"),
    path("admin/", admin.site.urls),
    # set_language: the top bar's language selector posts here (Django's, plus the profile).
    path("i18n/setlang/", views.set_language, name="set_language"),
    # ESPs post bounces and complaints here (anymail checks the basic auth; docs/feedback.md).
    path("webhooks/anymail/", include("anymail.urls")),
]
