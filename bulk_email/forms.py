"""The Email tab's compose fields. The page's script posts them as JSON and the api validates
them; the form exists to render the controls (CKEditor's widget and its media) the Django way."""

from ckeditor.widgets import CKEditorWidget
from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

# The site's CKEditor configuration for the composer, when it defines one (toolbar with a
# Source button, content filter matching the server's sanitizer); django-ckeditor's default
# otherwise, which has a Source button too.
EDITOR_CONFIG_NAME = "bulk_email"


def editor_config_name() -> str:
    configs = getattr(settings, "CKEDITOR_CONFIGS", None) or {}
    return EDITOR_CONFIG_NAME if EDITOR_CONFIG_NAME in configs else "default"


class ComposeForm(forms.Form):
    """Renders the message's CKEditor and its media. The subject input is written in the
    template, without a maxlength: a pasted long subject is kept whole, and the counter and
    the server's message say by how much it is over rather than the browser cutting it."""

    message = forms.CharField(label=_("Message"))

    class Media:
        # After CKEditor's own script (named here so that the merged media keeps that order):
        # makes CKEditor work under a Content-Security-Policy without inline script.
        js = ["ckeditor/ckeditor/ckeditor.js", "bulk_email/ckeditor_csp.js"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, auto_id="bulk-email-%s", **kwargs)
        self.fields["message"].widget = CKEditorWidget(
            config_name=editor_config_name(),
            attrs={"aria-describedby": "bulk-email-message-hint bulk-email-error-message"},
        )
