"""bulk_email as an integrator gets it: the wheel built from this checkout, installed into a
fresh virtual environment beside a host project that is not lms_stub
(tests/fixtures/hostproject: its own models, its own LMS backend), the contract tests shipped
in the wheel run against that backend, and a scheduled email sent by a celery worker and beat
started as the README's integration steps say."""

import datetime
import email
import email.policy
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import stop

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HOST = ROOT / "tests" / "fixtures" / "hostproject"
COURSE = "Campus/Physics/2026"  # an old-style Open edX key: slashes in every URL
# Left out of the copy the wheel is built from: environments, caches, results.
SPEC = "u.find_spec('bulk_email.testing').origin"
NOT_SOURCE = (".git", ".venv", "var", "node_modules", ".cache", "results", "__pycache__")


def run(command: list, *, cwd: Path, env: dict | None = None, timeout: float = 600):
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory, redis_url) -> dict:
    """The wheel built and installed into a new virtual environment; the host project copied
    beside it. Returns the paths and the environment its commands run with."""
    if os.environ.get("DATABASE_URL"):
        pytest.skip("the host project has its own database: this runs in the SQLite pass")
    place = tmp_path_factory.mktemp("wheel")
    source = place / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", place / "dist", source],
        cwd=place)  # fmt: skip
    wheel = next((place / "dist").glob("bulk_email-*.whl"))
    run([sys.executable, "-m", "venv", place / "venv"], cwd=place)
    pip = place / "venv" / "bin" / "pip"
    run([pip, "install", "-q", f"{wheel}[redis]", "pytest", "pytest-django"], cwd=place)
    host = place / "host"
    shutil.copytree(HOST, host, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3*"))
    broker = redis_url.rsplit("/", 1)[0] + "/12"  # a database of its own: no other test's queue
    env = {
        "PATH": f"{place / 'venv' / 'bin'}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", str(place)),
        "HOST_DB": str(place / "host.sqlite3"),
        "HOST_BROKER_URL": broker,
    }
    return {"place": place, "host": host, "python": place / "venv" / "bin" / "python", "env": env}


def test_the_installed_package_is_the_wheel_not_this_checkout(installed):
    where = run(
        [installed["python"], "-c", "import bulk_email; print(bulk_email.__file__)"],
        cwd=installed["host"],
        env=installed["env"],
    )
    assert str(installed["place"] / "venv") in where and "testing.py" in run(
        [
            installed["python"],
            "-c",
            "import importlib.util as u; print(u.find_spec('bulk_email.testing').origin)",
        ],
        cwd=installed["host"],
        env=installed["env"],
    )


def test_the_shipped_contract_tests_pass_against_the_hosts_backend(installed):
    output = run(
        [installed["python"], "-m", "pytest", "-q", "-p", "no:cacheprovider", "campus"],
        cwd=installed["host"],
        env=installed["env"],
    )
    passed = re.search(r"(\d+) passed", output)
    assert (
        passed and int(passed.group(1)) >= 16 and "failed" not in output and "error" not in output
    )


def start(installed, smtp_port: int, *command) -> subprocess.Popen:
    log = open(installed["place"] / f"{command[0]}.log", "ab")  # noqa: SIM115 (closed by stop)
    celery = installed["place"] / "venv" / "bin" / "celery"
    return subprocess.Popen(
        [str(celery), "-A", "hostproject", *command],
        cwd=installed["host"],
        env={**installed["env"], "HOST_EMAIL_PORT": str(smtp_port)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_a_scheduled_email_goes_out_through_a_worker_and_beat_started_as_documented(
    installed, smtp_sink
):
    manage = [installed["python"], "manage.py"]
    env = {**installed["env"], "HOST_EMAIL_PORT": str(smtp_sink.port)}
    run([*manage, "migrate", "-v", "0"], cwd=installed["host"], env=env)
    assert (
        "System check identified no issues"
        in run([*manage, "check"], cwd=installed["host"], env=env)
        or True
    )  # warnings are allowed (no FEEDBACK_DOMAIN); errors fail the run above
    run([*manage, "campus_seed", "--course-id", COURSE, "--learners", "3"],
        cwd=installed["host"], env=env)  # fmt: skip
    worker = start(installed, smtp_sink.port, "worker", "-Q", "default,large", "-c", "1")
    beat = start(installed, smtp_sink.port, "beat", "-s", installed["place"] / "beat-schedule")
    try:
        send_at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=5)
        scheduled = run(
            [*manage, "send_course_email", "--course-id", COURSE, "--sender", "prof",
             "--subject", "Scheduled on campus", "--message", "<p>Hi %%USER_FULLNAME%%</p>",
             "--to", "learners", "--send-at", send_at.isoformat()],
            cwd=installed["host"], env=env,
        )  # fmt: skip
        assert "Scheduled" in scheduled
        deadline = time.monotonic() + 90
        while len(smtp_sink.messages) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        status = run([*manage, "bulk_email_status", "--course-id", COURSE],
                     cwd=installed["host"], env=env)  # fmt: skip
        while "Success" not in status and time.monotonic() < deadline:
            time.sleep(0.5)
            status = run([*manage, "bulk_email_status", "--course-id", COURSE],
                         cwd=installed["host"], env=env)  # fmt: skip
        assert "Success" in status, status
    finally:
        stop(worker), stop(beat)
    received = sorted(address for m in smtp_sink.messages for address in m.rcpt_tos)
    assert received == [f"learner{n}@campus.example" for n in range(3)]
    first = next(m for m in smtp_sink.messages if m.rcpt_tos == ["learner0@campus.example"])
    message = email.message_from_bytes(first.data, policy=email.policy.default)
    assert message["From"] == "Physics on campus Course Staff <no-reply@campus.example>"
    assert "Hi Learner 0" in message.get_body(("plain",)).get_content()


def makefile_install_environment() -> dict:
    """The environment `make venv` installs under (the Makefile's PYTHONWARNINGS setting)."""
    makefile = (ROOT / "Makefile").read_text()
    setting = re.search(r'PYTHONWARNINGS="([^"]+)" \$\(PY\) -m pip install', makefile)
    assert setting, "make venv no longer sets PYTHONWARNINGS for its install"
    return {"PYTHONWARNINGS": setting.group(1)}


def test_an_editable_install_as_make_venv_does_it_shows_no_warning_box(installed):
    """Last in this module: it replaces the wheel with the checkout, editable. setuptools'
    "Editable installation" box looked like trouble to a newcomer running `make venv`."""
    pip = [installed["place"] / "venv" / "bin" / "python", "-m", "pip", "install", "--quiet"]
    source = installed["place"] / "source"

    def install(extra_env: dict) -> str:
        env = {**os.environ, **installed["env"], **extra_env}
        result = subprocess.run(
            [str(part) for part in (*pip, "--no-deps", "-e", source)],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout + result.stderr

    run([*pip[:-1], "--quiet", "--upgrade", "pip"], cwd=installed["place"])  # as make venv does
    assert "Editable installation" in install({})  # what it printed before
    assert "Editable installation" not in install(makefile_install_environment())
