"""Every parameter of the Email tab's JSON endpoints is bounded: whatever a script sends, the
answer is 2xx or a 4xx in the one error shape, never a 500 (DESIGN.md, "Security conventions").
The named cases first, then properties over arbitrary values."""

import datetime
import json

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bulk_email import api
from bulk_email.models import EmailTask
from tests.factories import staff

pytestmark = pytest.mark.django_db

ERROR_SHAPE = {"message", "field", "errors", "code"}
SEND = {"subject": "Hi", "message": "<p>Hi</p>", "targets": ["myself"]}


@pytest.fixture
def signed_in(client, instructor):
    client.force_login(instructor)
    return client


@pytest.fixture
def scheduled(course, instructor):
    later = timezone.now() + datetime.timedelta(hours=1)
    access = staff(course.id, instructor)
    fields = {"subject": SEND["subject"], "html": SEND["message"], "targets": SEND["targets"]}
    return api.send_email(access=access, send_at=later, **fields)


def api_url(course, rest=""):
    return f"/email/courses/{course.id}/api/{rest}"


def call(client, method, url, body=None):
    data = json.dumps(body) if body is not None else ""
    return client.generic(method, url, data, content_type="application/json")


def refusal_of(response, status=400) -> dict:
    assert response.status_code == status, response.content
    assert set(response.json()) == ERROR_SHAPE
    return response.json()


def days_from_now(days: float) -> str:
    return (timezone.now() + datetime.timedelta(days=days)).isoformat()


# --- Named cases --------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["-1", "99999999999999999999999", "1001", "ten", "1e3", ""])
def test_a_task_limit_out_of_bounds_is_a_400_on_limit(signed_in, course, limit):
    refused = refusal_of(signed_in.get(api_url(course, "tasks/"), {"limit": limit}))
    assert refused["field"] == "limit" and refused["code"] == "bad_request"
    assert "between 0 and 1000" in refused["message"]


@pytest.mark.parametrize("limit", ["0", "1", "1000", " 7 "])
def test_a_task_limit_within_bounds_lists_the_tasks(signed_in, course, scheduled, limit):
    response = signed_in.get(api_url(course, "tasks/"), {"limit": limit})
    assert response.status_code == 200 and len(response.json()["tasks"]) == 1


@pytest.mark.parametrize("send_at", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_send_at_at_the_ends_of_the_calendar_is_a_400(signed_in, course, scheduled, send_at):
    created = refusal_of(
        call(signed_in, "POST", api_url(course, "emails/"), {**SEND, "send_at": send_at})
    )
    edited = refusal_of(
        call(
            signed_in,
            "PUT",
            api_url(course, f"tasks/{scheduled.pk}/"),
            {**SEND, "send_at": send_at},
        )
    )
    assert created["field"] == edited["field"] == "send_at"
    assert EmailTask.objects.count() == 1


def test_send_at_beyond_the_schedule_horizon_is_refused(signed_in, course, settings):
    body = {**SEND, "send_at": days_from_now(366)}
    refused = refusal_of(call(signed_in, "POST", api_url(course, "emails/"), body))
    assert refused["field"] == "send_at" and "365 days" in refused["message"]
    settings.BULK_EMAIL = {**settings.BULK_EMAIL, "MAX_SCHEDULE_DAYS": 400}
    assert call(signed_in, "POST", api_url(course, "emails/"), body).status_code == 201


def test_a_task_id_beyond_any_database_integer_is_a_404(signed_in, course):
    refused = refusal_of(signed_in.get(api_url(course, f"tasks/{10**30}/")), status=404)
    assert refused["code"] == "unknown_task"


def test_ten_thousand_unknown_targets_get_a_short_answer(signed_in, course):
    """Each key used to be listed: a 257 KB error."""
    unknown = [f"cohort:{number}" for number in range(10_000)]
    for rest in ("count/", "emails/"):
        response = call(signed_in, "POST", api_url(course, rest), {**SEND, "targets": unknown})
        assert refusal_of(response)["field"] == "targets"
        assert len(response.content) < 1000, len(response.content)


# --- Properties: any value of any parameter ----------------------------------------------------

PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=60,
    deadline=None,
    # The client and the course are set up once per test: every example may reuse them.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
offsets = st.integers(min_value=-1439, max_value=1439).map(
    lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes))
)
timestamps = st.builds(
    lambda moment, offset: moment.replace(tzinfo=offset).isoformat(), st.datetimes(), offsets
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "subject": st.text() | json_values,
        "message": st.text() | json_values,
        "targets": st.lists(st.text(max_size=20), max_size=5) | json_values,
        "send_at": timestamps | st.text() | json_values,
    },
)
body_endpoints = st.sampled_from(
    [("POST", "count/"), ("POST", "preview/"), ("POST", "emails/"), ("PUT", "task")]
)


def assert_never_a_server_error(response) -> None:
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400 and response["Content-Type"] == "application/json":
        assert set(response.json()) == ERROR_SHAPE


@PROPERTY_SETTINGS
@given(limit=st.text() | st.integers().map(str))
def test_any_task_limit_is_answered_without_a_server_error(signed_in, course, limit):
    assert_never_a_server_error(signed_in.get(api_url(course, "tasks/"), {"limit": limit}))


@PROPERTY_SETTINGS
@given(task_id=st.integers(min_value=0), rest=st.sampled_from(["", "email/", "resend/"]))
def test_any_task_id_is_answered_without_a_server_error(signed_in, course, task_id, rest):
    method = "POST" if rest == "resend/" else "GET"
    assert_never_a_server_error(call(signed_in, method, api_url(course, f"tasks/{task_id}/{rest}")))


@PROPERTY_SETTINGS
@given(endpoint=body_endpoints, body=bodies)
def test_any_body_is_answered_without_a_server_error(signed_in, course, scheduled, endpoint, body):
    method, rest = endpoint
    rest = f"tasks/{scheduled.pk}/" if rest == "task" else rest
    assert_never_a_server_error(call(signed_in, method, api_url(course, rest), body))


@pytest.mark.parametrize(
    "change",
    [{"subject": "Hi\x00there"}, {"message": "<p>Hi\x00</p>"}, {"targets": ["cohort:\x00"]}],
)
def test_a_nul_character_is_refused_or_dropped_never_stored_raw(signed_in, course, change):
    """PostgreSQL cannot store NUL in text: it must not get that far."""
    response = call(signed_in, "POST", api_url(course, "emails/"), {**SEND, **change})
    assert response.status_code in (201, 400), response.content
