"""What the benchmark scripts share: services, databases, the fast SMTP sink, processes."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"

# How this project's machines start the services (the env docs); used when one is down.
START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
    "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"Nothing listens on port {port} after {timeout} s")


def ensure_service(name: str, port: int, start_command: str) -> None:
    """Use the running server; start it the machine's way when it is down."""
    if port_open(port):
        return
    print(f"{name} is not running on port {port}: starting it")
    subprocess.run(start_command, shell=True, check=False)
    wait_for_port(port, timeout=30)


def ensure_services() -> None:
    ensure_service("PostgreSQL", 5432, START_POSTGRES)
    ensure_service("Redis", 6379, START_REDIS)


def ensure_database(database_url: str) -> None:
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if exists.fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def django_env(database_url: str, **extra: str) -> dict:
    # Development (the key generated under var/, local hosts), but DEBUG off: a DEBUG process
    # keeps every SQL query in memory and wraps every cursor.
    development = {"BULK_EMAIL_ENV": "development", "DEBUG": "0"}
    return {**os.environ, "DATABASE_URL": database_url, **development, **extra}


def manage(database_url: str, *args: str, **env: str) -> None:
    command = [sys.executable, str(ROOT / "manage.py"), *args]
    subprocess.run(command, check=True, cwd=ROOT, env=django_env(database_url, **env))


def sized_course_id(size: int) -> str:
    """The benchmark course of ``size`` learners: course-v1:Bench+S100k+2026, +S1M+, ..."""
    label = f"{size // 1_000_000}M" if size % 1_000_000 == 0 else f"{size // 1000}k"
    return f"course-v1:Bench+S{label}+2026"


def seed_sized_course(database_url: str, size: int, *, tracks: str = "audit,verified,honor",
                      cohorts: int = 4) -> float:  # fmt: skip
    """``seed_course`` for ``sized_course_id(size)``; the seconds it took. A course already
    there is reused (seed_course only counts it), so a seeded database serves every run."""
    course_id = sized_course_id(size)
    print(f"seeding {course_id} with {size:,} learners (reused when present) ...", flush=True)
    started = time.perf_counter()
    manage(database_url, "seed_course", f"--course-id={course_id}", f"--learners={size}",
           f"--tracks={tracks}", f"--cohorts={cohorts}")  # fmt: skip
    return time.perf_counter() - started


def start_celery_worker(arguments: list[str], *, env: dict, log: Path) -> subprocess.Popen:
    """``celery <arguments>`` with its output in ``log``, once it says it is ready."""
    command = [sys.executable, "-m", "celery", *arguments]
    output = open(log, "wb")  # noqa: SIM115 (lives as long as the worker)
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while " ready." not in log.read_text(errors="replace"):
        if time.monotonic() > deadline or worker.poll() is not None:
            raise RuntimeError(f"The worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return worker


def smtp_sink_binary() -> Path | None:
    """Postfix's smtp-sink, unpacked from the Debian package into bench/.cache once."""
    binary = CACHE / "postfix" / "usr" / "sbin" / "smtp-sink"
    if binary.exists():
        return binary
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        return None
    CACHE.mkdir(parents=True, exist_ok=True)
    download = subprocess.run(["apt-get", "download", "postfix"], cwd=CACHE, capture_output=True)
    packages = sorted(CACHE.glob("postfix_*.deb"))
    if download.returncode or not packages:
        return None
    subprocess.run(["dpkg", "-x", str(packages[-1]), str(CACHE / "postfix")], check=True)
    return binary if binary.exists() else None


def smtp_source_binary() -> Path | None:
    """Postfix's smtp-source (its test client, in C: the physical limit of this machine's
    SMTP into the same sink), from the same package as smtp-sink."""
    sink = smtp_sink_binary()
    return None if sink is None else sink.with_name("smtp-source")


def postfix_env(binary: Path) -> dict:
    """The unpacked package's own libraries first (they are not installed system-wide)."""
    return {**os.environ, "LD_LIBRARY_PATH": str(binary.parent.parent / "lib" / "postfix")}


def start_sink(port: int) -> tuple[subprocess.Popen, str]:
    """Postfix's smtp-sink when it can be had (fast), else the aiosmtpd sink (and say so)."""
    binary = smtp_sink_binary()
    if binary is not None:
        env = postfix_env(binary)
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        # -c: count; 1000: backlog. It accepts PIPELINING, as real MTAs do.
        command = [str(binary), "-c", *user, f"127.0.0.1:{port}", "1000"]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        name = "Postfix smtp-sink"
    else:
        command = [sys.executable, "-m", "lms_stub.smtp_sink", "--port", str(port)]
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
        name = "aiosmtpd sink (smtp-sink unavailable: differences are hidden by its slowness)"
    wait_for_port(port)
    return process, name
