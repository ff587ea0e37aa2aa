"""An index on the user table's normalised address, LOWER(TRIM(email)): bulk_email finds the
users whose address is suppressed from its (few) suppressions, one probe each, instead of
normalising every user's address (docs/performance.md says a host LMS wants the same)."""

from django.conf import settings
from django.db import migrations

INDEX = "lms_stub_user_address_lower"


class Migration(migrations.Migration):
    dependencies = [
        ("lms_stub", "0002_languages"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The same SQL on PostgreSQL and SQLite (both index an expression of function calls).
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON auth_user (LOWER(TRIM(email)))",
            f"DROP INDEX IF EXISTS {INDEX}",
        ),
    ]
