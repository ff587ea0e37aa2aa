"""manage.py import_openedx_templates FILE: Open edX's CourseEmailTemplate rows, as its
``dumpdata bulk_email.courseemailtemplate`` writes them, become templates here that fill the
same placeholders ({course_title}, {name}, ...)."""

import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.translation import gettext as _

from bulk_email.models import CourseEmailTemplate

# Open edX's default template has no name (NULL): the one its sends use unless a course or
# an organization names another.
UNNAMED = "openedx-default"


class Command(BaseCommand):
    help = (
        "Import Open edX email templates from the JSON of `./manage.py lms dumpdata "
        "bulk_email.courseemailtemplate`; a template of the same name is replaced. The unnamed "
        f"default becomes {UNNAMED!r} (set BULK_EMAIL['DEFAULT_TEMPLATE_NAME'] to use it)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options):
        templates, refusals = [], []
        for row in read_rows(file):
            try:
                templates.append(validated_template(row))
            except ValidationError as error:
                refusals.append(f"{row_name(row)!r}: {'; '.join(error.messages)}")
        if refusals:  # all or nothing: a half-imported set of templates helps nobody
            refused = " | ".join(refusals)
            raise CommandError(_("Nothing imported. Refused %(refusals)s") % {"refusals": refused})
        with transaction.atomic():
            for template in templates:
                template.save()
                self.stdout.write(_("Imported %(name)r") % {"name": template.name})


def read_rows(file: Path) -> list[dict]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        problem = _("Cannot read %(file)s: %(error)s") % {"file": file, "error": error}
        raise CommandError(problem) from error
    rows = [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []
    templates = [r for r in rows if r.get("model") == "bulk_email.courseemailtemplate"]
    if not templates:
        problem = _("%(file)s holds no bulk_email.courseemailtemplate rows.") % {"file": file}
        raise CommandError(problem)
    return templates


def row_name(row: dict) -> str:
    return (row.get("fields") or {}).get("name") or UNNAMED


def validated_template(row: dict) -> CourseEmailTemplate:
    """The row as a template, validated as the admin validates (one body slot in each part,
    known placeholders only); not saved yet."""
    fields = row.get("fields") or {}
    name = row_name(row)
    template = CourseEmailTemplate.objects.filter(name=name).first() or CourseEmailTemplate()
    template.name = name
    template.html_template = str(fields.get("html_template") or "")
    template.plain_template = str(fields.get("plain_template") or "")
    template.openedx_placeholders = True
    template.full_clean()
    return template
