"""A real SMTP server for the development site and the tests: records the raw bytes it
receives (the Mailbox page reads them) and can misbehave on cue.

In tests::

    with SMTPSink() as sink:                       # a thread on a free localhost port
        sink.faults.append(Fault.reject("bad@example.com"))
        ...send to 127.0.0.1:sink.port...
        message = sink.messages[0].parsed()         # an email.message.EmailMessage

As a process (the development site, the benchmark, other machines' workers)::

    python -m lms_stub.smtp_sink --port 1025 [--maildir var/mail] [--smtputf8]

Faults reply with a chosen code at MAIL, RCPT or DATA, optionally only for one address, only
after N accepted messages, only a number of times; they can also close the connection after
replying (421), drop it without replying, or answer slowly. AUTH can be offered and made to
fail with 535 or 454.
"""

import argparse
import asyncio
import email
import logging
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from email import policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

ACCEPTED = "250 2.0.0 OK"
logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str]
    peer: tuple = ()  # the client's (host, port): one per connection

    def parsed(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=policy.default)


@dataclass
class Fault:
    """Instead of accepting ``command`` (MAIL, RCPT or DATA), reply ``reply``."""

    command: str
    reply: str = ""
    address: str | None = None  # only for this sender (MAIL) or recipient (RCPT)
    after: int = 0  # only once the sink has accepted this many messages
    times: int | None = None  # fire this many times, then accept again; None: always
    close: bool = False  # close the connection after the reply
    drop: bool = False  # close the connection without any reply
    delay: float = 0.0  # wait this long before replying
    probability: float = 1.0  # fire on this share of the matching commands (seeded, repeatable)
    domain: str | None = None  # only for addresses at this domain
    every: int | None = None  # only when the accepted count is a multiple of this, once each
    fired: int = 0
    fired_at: set = field(default_factory=set, repr=False)
    rng: random.Random = field(default_factory=lambda: random.Random(8058), repr=False)

    @classmethod
    def reject(cls, address: str, reply: str = "550 5.1.1 No such user here") -> "Fault":
        return cls("RCPT", reply, address=address)

    @classmethod
    def closing_421(cls, after: int, times: int | None = 1) -> "Fault":
        reply = "421 4.3.2 Service shutting down, closing transmission channel"
        return cls("MAIL", reply, after=after, times=times, close=True)

    @classmethod
    def throttle(
        cls,
        after: int = 0,
        reply: str = "454 4.7.0 Throttling: too many messages",
        *,
        probability: float = 1.0,
        times: int | None = None,
    ) -> "Fault":
        return cls("MAIL", reply, after=after, probability=probability, times=times)

    @classmethod
    def reject_domain(cls, domain: str, reply: str = "550 5.1.2 Domain not found") -> "Fault":
        return cls("RCPT", reply, domain=domain)

    @classmethod
    def closing_421_every(cls, every: int) -> "Fault":
        """421 and a hang-up before every ``every``-th message (the retry then goes through)."""
        reply = "421 4.3.2 Service shutting down, closing transmission channel"
        return cls("MAIL", reply, every=every, close=True)

    @classmethod
    def drop_connection(cls, after: int, times: int | None = 1) -> "Fault":
        return cls("DATA", after=after, times=times, drop=True)

    @classmethod
    def slow(cls, delay: float, command: str = "DATA") -> "Fault":
        return cls(command, ACCEPTED, delay=delay)

    def matches(self, command: str, address: str | None, accepted: int) -> bool:
        if command != self.command or accepted < self.after:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        if self.address is not None and (address or "").lower() != self.address.lower():
            return False
        if self.domain is not None and not (address or "").lower().endswith("@" + self.domain):
            return False
        if self.every is not None:
            if accepted == 0 or accepted % self.every or accepted in self.fired_at:
                return False
            self.fired_at.add(accepted)
        return self.probability >= 1.0 or self.rng.random() < self.probability


class SinkHandler:
    """aiosmtpd hooks: apply the first matching fault, else accept and record."""

    def __init__(self, sink: "SMTPSink"):
        self.sink = sink

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        """Offer PIPELINING (RFC 2920) unless told not to: aiosmtpd reads commands one by
        one from its stream, so pipelined clients work; it just does not say so itself."""
        session.host_name = hostname
        if self.sink.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def apply_fault(self, server, command: str, address: str | None) -> str | None:
        fault = self.sink.matching_fault(command, address)
        if fault is None:
            return None
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.drop:
            server.transport.abort()
            return "421 4.4.2 dropped"  # never reaches the client
        if fault.close:
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
        return None if fault.reply == ACCEPTED else fault.reply

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = await self.apply_fault(server, "MAIL", address)
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = await self.apply_fault(server, "RCPT", address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = await self.apply_fault(server, "DATA", None)
        if reply:
            return reply
        self.sink.record(envelope, session.peer)
        return ACCEPTED


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SMTPSink:
    """The server in a background thread; ``messages`` holds what it accepted."""

    def __init__(
        self,
        *,
        port: int | None = None,
        smtputf8: bool = True,
        users: dict[str, str] | None = None,
        auth_failure_reply: str = "535 5.7.8 Authentication credentials invalid",
        maildir: Path | None = None,
        pipelining: bool = True,
    ):
        self.port = port or free_port()
        self.messages: list[ReceivedMessage] = []
        self.faults: list[Fault] = []
        self.users = users
        self.auth_failure_reply = auth_failure_reply
        self.maildir = maildir
        self.pipelining = pipelining
        self.smtputf8 = smtputf8
        self.lock = threading.Lock()
        self.controller = self.make_controller()

    def make_controller(self) -> Controller:
        return Controller(
            SinkHandler(self),
            hostname="127.0.0.1",
            port=self.port,
            enable_SMTPUTF8=self.smtputf8,
            authenticator=self.authenticate if self.users is not None else None,
            auth_require_tls=False,
            decode_data=False,
        )

    def matching_fault(self, command: str, address: str | None) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(command, address, len(self.messages)):
                    fault.fired += 1
                    return fault
        return None

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.users.get(auth_data.login.decode()) == auth_data.password.decode()
        )
        if ok:
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False, message=self.auth_failure_reply)

    def record(self, envelope, peer) -> None:
        message = ReceivedMessage(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=envelope.original_content,
            mail_options=list(envelope.mail_options),
            peer=tuple(peer or ()),
        )
        with self.lock:
            self.messages.append(message)
        if self.maildir is not None:
            path = self.maildir / f"{time.time():.6f}-{len(self.messages)}.eml"
            partial = path.with_suffix(".part")  # readers never see a half-written message
            partial.write_bytes(message.data)
            partial.replace(path)

    @property
    def connections(self) -> int:
        """How many connections delivered at least one message."""
        return len({message.peer for message in self.messages})

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.messages

    def start(self) -> "SMTPSink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def restart(self) -> None:
        """Up again on the same port after ``stop()`` (an outage ends), keeping what it got."""
        self.controller = self.make_controller()
        self.controller.start()

    def __enter__(self) -> "SMTPSink":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="A local SMTP sink that keeps what it gets.")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--maildir", type=Path, help="save each message as an .eml file here")
    parser.add_argument("--no-smtputf8", action="store_true", help="do not offer SMTPUTF8")
    args = parser.parse_args()
    if args.maildir:
        args.maildir.mkdir(parents=True, exist_ok=True)
    sink = SMTPSink(port=args.port, smtputf8=not args.no_smtputf8, maildir=args.maildir)
    with sink:
        print(f"SMTP sink listening on 127.0.0.1:{sink.port}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
