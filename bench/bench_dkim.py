"""Per-message DKIM signing cost (a script, not a test): dkimpy, as the project signed before,
against the OpenSSL signer of bulk_email/rendering/dkim.py, with RSA-2048 and Ed25519.

    python bench/bench_dkim.py [--messages 400] [--runs 5]

Each line signs the same personalised messages (bench_messages.py's announcement, one per
learner, ~8 KB) and gives the median over the runs of the time per message (min, max):

- dkimpy rsa-sha256: ``dkim.sign`` relaxed/relaxed, the project's header list (pure-Python RSA);
- dkimpy ed25519-sha256: the same with an Ed25519 key (PyNaCl; when installed);
- bulk_email rsa-sha256: the whole signing step, ``dkim_sign(message, prepared.dkim)``:
  parse, canonicalize, hash, sign, fold; goal <= 1.2 ms;
- bulk_email rsa-sha256 + ed25519-sha256: both signatures on each message;
- the OpenSSL RSA-2048 signature alone, over 32 bytes: the floor of any rsa-sha256 signer here;
- render + bytes, unsigned and signed: the per-recipient step around it.

JSON in bench/results/dkim.json. No database, no network.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms_stub.settings")
os.environ.setdefault("BULK_EMAIL_ENV", "development")

import django  # noqa: E402

django.setup()

import dkim  # noqa: E402
from bench_messages import BODY  # noqa: E402
from common import RESULTS  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402
from cryptography.hazmat.primitives.serialization import load_pem_private_key  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from bulk_email.rendering import Recipient, render_message  # noqa: E402
from bulk_email.rendering.dkim import DKIM_SIGNED_HEADERS, dkim_sign  # noqa: E402
from tests.messages import EmailData, make_dkim_key, make_ed25519_key, prepare  # noqa: E402

DOMAIN = "lms.example.com"


def per_message_ms(sign, messages: list[bytes], runs: int) -> dict:
    """Median (min, max) over ``runs`` of the time per message of ``sign`` over all of them,
    wall clock; and the median CPU time of the process, which a busy machine inflates less."""
    sign(messages[0])  # warm
    samples, cpu = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        for message in messages:
            sign(message)
        samples.append((time.perf_counter() - started) / len(messages) * 1000)
        cpu.append((time.process_time() - cpu_started) / len(messages) * 1000)
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "cpu_median": statistics.median(cpu),
    }


def dkim_config(rsa_pem: bytes, ed25519_pem: bytes | None = None) -> dict:
    config = {"domain": DOMAIN, "selector": "bulk", "private_key": rsa_pem}
    if ed25519_pem:
        config |= {"ed25519_selector": "bulk-ed", "ed25519_private_key": ed25519_pem}
    return {"DKIM": config}


def prepared_with(bulk_email: dict):
    with override_settings(BULK_EMAIL=bulk_email):
        return prepare(EmailData(subject="Week news for %%USER_FULLNAME%%", html_message=BODY))


def dkimpy_signer(selector: bytes, key: bytes, algorithm: bytes):
    def sign(message: bytes) -> bytes:
        return dkim.sign(message, selector, DOMAIN.encode(), key, signature_algorithm=algorithm,
                         canonicalize=(b"relaxed", b"relaxed"),
                         include_headers=list(DKIM_SIGNED_HEADERS), linesep=b"\r\n")  # fmt: skip

    return sign


def ed25519_seed(pem: bytes) -> bytes:
    """dkimpy's Ed25519 key format: the base64 of the 32-byte seed."""
    import base64

    from cryptography.hazmat.primitives import serialization

    raw = load_pem_private_key(pem, None).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-results", action="store_true", help="do not write the JSON")
    args = parser.parse_args()

    rsa_pem, _ = make_dkim_key()
    ed25519_pem, _ = make_ed25519_key()
    unsigned = prepared_with({})
    rsa_only = prepared_with(dkim_config(rsa_pem))
    both = prepared_with(dkim_config(rsa_pem, ed25519_pem))
    people = [Recipient(n, f"learner{n}@example.com", f"Learnér {n}") for n in range(args.messages)]
    messages = [render_message(unsigned, p).as_bytes() for p in people]
    few = messages[: max(20, args.messages // 10)]  # dkimpy's RSA: 10x fewer, same per message

    rsa_key = load_pem_private_key(rsa_pem, None)
    dkimpy_rsa = dkimpy_signer(b"bulk", rsa_pem, b"rsa-sha256")
    lines = {"dkimpy rsa-sha256": per_message_ms(dkimpy_rsa, few, args.runs)}
    try:
        import nacl  # noqa: F401  dkimpy signs Ed25519 only with PyNaCl

        seed = ed25519_seed(ed25519_pem)
        lines["dkimpy ed25519-sha256"] = per_message_ms(
            dkimpy_signer(b"bulk-ed", seed, b"ed25519-sha256"), messages, args.runs
        )
    except ImportError:
        print("PyNaCl not installed: no dkimpy ed25519-sha256 line")
    lines |= {
        "bulk_email rsa-sha256": per_message_ms(
            lambda m: dkim_sign(m, rsa_only.dkim), messages, args.runs
        ),
        "bulk_email rsa-sha256 + ed25519-sha256": per_message_ms(
            lambda m: dkim_sign(m, both.dkim), messages, args.runs
        ),
        "OpenSSL RSA-2048 signature alone": per_message_ms(
            lambda m: rsa_key.sign(m[:32], padding.PKCS1v15(), hashes.SHA256()),
            messages,
            args.runs,
        ),
        "render + bytes, unsigned": per_message_ms(
            lambda p: render_message(unsigned, p).as_bytes(), people, args.runs
        ),
        "render + bytes, rsa-sha256": per_message_ms(
            lambda p: render_message(rsa_only, p).as_bytes(), people, args.runs
        ),
    }
    size = statistics.median(len(m) for m in messages)
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    print(f"per message, median of {args.runs} runs (min-max), and the median CPU time;")
    print(f"messages of {size / 1000:.1f} KB; {os.cpu_count()} cores, load average {load}")
    for name, ms in lines.items():
        wall = f"{ms['median']:7.3f} ms ({ms['min']:.3f}-{ms['max']:.3f})"
        print(f"  {name:40s} {wall:28s} CPU {ms['cpu_median']:6.3f} ms")
    old, new = lines["dkimpy rsa-sha256"]["median"], lines["bulk_email rsa-sha256"]["median"]
    verdict = "met" if new <= 1.2 else "NOT met"
    print(f"rsa-sha256: {old / new:.1f}x faster than dkimpy; goal <= 1.2 ms a message: {verdict}")
    if not args.no_results:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / "dkim.json"
        figures = {"messages": args.messages, "runs": args.runs, "message_bytes": size,
                   "load_average": os.getloadavg()}  # fmt: skip
        out.write_text(json.dumps({**figures, "ms_per_message": lines}, indent=2))
        print(f"results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
