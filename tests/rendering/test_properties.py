"""Property-based: whatever the subject, the learner's name and the body, the message parses,
no header is split or added, and the footer and unsubscribe headers are always there."""

from email import policy
from email.parser import BytesParser

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulk_email.exceptions import InvalidEmailError
from bulk_email.rendering import CONTROL_CHARACTERS, Recipient, dot_stuffed, render_message
from tests.messages import UNICODE_COURSE, EmailData, prepare

# Any Unicode text, quotes, angle brackets, right-to-left marks and line breaks included.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)
names = st.one_of(text, st.sampled_from(['"O\'Brien" <evil>', "\u202eKARAM", "a\r\nBcc: x@y"]))
bodies = st.one_of(text, st.sampled_from(["<b>bold", "<script>alert(1)</script>", "&amp;<"]))
HEADERS = {"from", "to", "subject", "date", "message-id", "list-unsubscribe",
           "list-unsubscribe-post", "list-id", "precedence", "auto-submitted", "mime-version",
           "content-type"}  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=text, name=names, body=bodies)
def test_any_subject_name_and_body_make_a_sound_message(subject, name, body):
    try:
        prepared = prepare(EmailData(subject=subject or "x", html_message=f"<p>{body}</p>"))
    except InvalidEmailError as refused:
        # Refused only for a control character in the subject, and said so.
        assert refused.field == "subject" and CONTROL_CHARACTERS.search(subject)
        return
    recipient = Recipient(user_id=7, email="learner@example.com", full_name=name)
    rendered = render_message(prepared, recipient)
    raw = rendered.as_bytes()
    assert rendered.as_stuffed_bytes() == dot_stuffed(raw)  # what SMTP's DATA carries
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert not message.defects
    assert {key.lower() for key in message} <= HEADERS
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/email/one-click/" in message["List-Unsubscribe"]
    assert message.get_content_type() == "multipart/alternative"
    for part in message.iter_parts():
        content = part.get_content()
        assert UNICODE_COURSE.display_name in content and "unsubscribe" in content.lower()
