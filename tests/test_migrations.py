from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_every_model_change_has_a_committed_migration():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_bulk_email_migrations_never_depend_on_the_lms():
    from pathlib import Path

    from bulk_email.migrations import __path__ as migration_dirs

    for migration in Path(migration_dirs[0]).glob("0*.py"):
        assert "lms_stub" not in migration.read_text(), migration.name
