"""Plain-data emails and courses for rendering and sending tests (no database needed)."""

import base64
import datetime
import subprocess
from dataclasses import dataclass

from bulk_email.lms import CourseInfo
from bulk_email.rendering import EmailTemplate, PreparedMessage, load_template, prepare_message

UNICODE_COURSE = CourseInfo(
    course_id="course-v1:EPFL+Phys101+2026",
    display_name="Physique générale — 物理",
    org="EPFL",
    end=datetime.datetime(2026, 6, 30, tzinfo=datetime.UTC),
    postal_address="EPFL, Station 1, 1015 Lausanne, Switzerland",
)
SETTINGS_URL = "https://lms.example.com/dashboard/#email-settings"


@dataclass
class EmailData:
    """The fields of a CourseEmail, as plain data."""

    pk: int | None = 7
    course_id: str = UNICODE_COURSE.course_id
    subject: str = "Bienvenue, %%USER_FULLNAME%% — %%COURSE_DISPLAY_NAME%%"
    html_message: str = (
        "<h1>Hello %%USER_FULLNAME%%</h1>"
        "<p>Your id is %%USER_ID%%. %%COURSE_DISPLAY_NAME%% ends on %%COURSE_END_DATE%%.</p>"
        '<p><a href="https://example.org/syllabus">Syllabus</a></p>'
    )
    text_message: str = ""
    template_name: str = ""
    from_addr: str = ""


def prepare(
    email: EmailData | None = None,
    course: CourseInfo = UNICODE_COURSE,
    template: EmailTemplate | None = None,
) -> PreparedMessage:
    return prepare_message(
        email or EmailData(),
        course,
        template=template or load_template(""),
        email_settings_url=SETTINGS_URL,
    )


def make_dkim_key() -> tuple[bytes, bytes]:
    """(private key PEM, the DNS TXT record publishing its public key), made with openssl."""
    private_pem = subprocess.run(
        ["openssl", "genrsa", "2048"], check=True, capture_output=True
    ).stdout
    public_der = subprocess.run(
        ["openssl", "rsa", "-pubout", "-outform", "DER"],
        input=private_pem,
        check=True,
        capture_output=True,
    ).stdout
    return private_pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)


def make_ed25519_key() -> tuple[bytes, bytes]:
    """(Ed25519 private key PEM, the DNS TXT record publishing it: RFC 8463's raw 32 bytes)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return private_pem, b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)
