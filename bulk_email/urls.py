"""bulk_email's public pages. A site includes them under a prefix of its choice:
``path("email/", include("bulk_email.urls"))``."""

from django.urls import path
from django.views.i18n import JavaScriptCatalog

from . import converters, email_tab, views  # noqa: F401  (converters: course_key)

app_name = "bulk_email"

urlpatterns = [
    path("settings/<course_key:course_id>/", views.email_settings, name="email_settings"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("one-click/<str:token>/", views.one_click_unsubscribe, name="one_click"),
    path("address/test/", views.address_test, name="address_test"),
    path("address/confirm/<str:token>/", views.address_confirm, name="address_confirm"),
    # The Email tab's strings for its JavaScript (gettext, ngettext, interpolate).
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["bulk_email"]), name="jsi18n"),
]

# The instructor dashboard's Email tab: JSON endpoints under courses/<course_id>/api/.
urlpatterns += email_tab.urlpatterns
