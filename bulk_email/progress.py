"""Where a batch notes, after each message the SMTP server accepted, how far it got.

The note must outlive the worker process before the next message leaves, so that a batch
taken over after a crash sends again at most the one message that was in flight. Writing
it as a committed UPDATE of the Batch row costs more than sending the message (a database
round trip, a WAL flush, the server's CPU), so when bulk_email has a Redis (``REDIS_URL``,
else a ``redis://`` broker) the note is one small Lua call there (~30 µs) and the Batch row
is written at *checkpoints*: at most every ``PROGRESS_CHECKPOINT_SECONDS``, on a failed
recipient, and at the batch's end. A worker that claims the batch next *adopts* the cursor
noted in Redis when it is ahead of the row, counting what lies between as sent.

Without Redis (the embedded SQLite setup), or when Redis fails or loses the note mid-batch
(a restart without persistence), every note is a checkpoint: one UPDATE per message.

Each note names the claim's token: a worker whose batch was taken over learns it from the
reply to its next note, read one message later (or from the row's ``claim_token`` at a
checkpoint, whichever comes first).
"""

import contextlib
import logging
import time

from . import app_settings

logger = logging.getLogger(__name__)

# After the site's prefix (app_settings.redis_key_prefix: two sites may share a Redis). The
# row's creation time is in the key so that a database reset (ids used again) never meets the
# notes of an older batch with the same id.
KEY = "{prefix}batch:{batch_id}:{created}:progress"
KEY_SECONDS = 7 * 24 * 3600  # a note outlives any batch; it is deleted when the batch ends

# The new claim's token replaces the old one, so the old claim's next note is refused;
# returns the cursor the old claim noted (nil when none).
ADOPT_SCRIPT = """
local noted = redis.call('HGET', KEYS[1], 'cursor')
redis.call('HSET', KEYS[1], 'token', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return noted
"""

# 1: noted; 0: another claim holds the batch; -1: the key is gone (Redis lost it).
NOTE_SCRIPT = """
local token = redis.call('HGET', KEYS[1], 'token')
if token == ARGV[1] then
  redis.call('HSET', KEYS[1], 'cursor', ARGV[2])
  return 1
end
if token then return 0 end
return -1
"""


class ClaimLost(Exception):
    """Another worker took the batch over (ours looked dead); stop without writing."""


class DatabaseNotes:
    """No store but the Batch row: every note is a checkpoint."""

    def adopt(self) -> int | None:
        return None

    def note(self, cursor: int) -> bool:
        return True

    def checkpointed(self) -> None:
        pass

    def forget(self) -> None:
        pass

    def release(self) -> None:
        pass


class RedisNotes:
    """The claim's notes in one Redis hash: ``token`` and ``cursor``."""

    def __init__(self, client, *, batch, token: str):
        redis = app_settings.import_optional("redis", extra="redis")
        self.errors = (redis.RedisError, OSError)
        self.key = KEY.format(
            prefix=app_settings.redis_key_prefix(),
            batch_id=batch.pk,
            created=batch.created.timestamp(),
        )
        self.token = token
        self.client = client
        self.adopt_script = client.register_script(ADOPT_SCRIPT)
        note_sha = client.register_script(NOTE_SCRIPT).sha
        # The note's command but its last argument (the cursor), packed once: redis-py packs
        # every argument anew on each call, and this runs once per message.
        head = (b"EVALSHA", note_sha.encode(), b"1", self.key.encode(), token.encode())
        self.note_head = b"*6\r\n" + b"".join(map(bulk_string, head))
        self.connection = None  # held from the first note to ``release``
        self.awaiting_reply = False  # the last note's reply is still to be read
        self.interval = app_settings.get("PROGRESS_CHECKPOINT_SECONDS")
        # The task's first batch checkpoints its first message, so the send's first message
        # shows at once; the others are a checkpoint each, not two. (Not 0.0 for "long ago":
        # the monotonic clock starts at boot, and a machine may be up for less than that.)
        self.last_checkpoint = float("-inf") if batch.seq == 0 else time.monotonic()
        self.degraded = False  # Redis failed: checkpoint every message for this claim

    def adopt(self) -> int | None:
        """Take the notes over for this claim; the cursor the previous claim noted."""
        try:
            noted = self.adopt_script(keys=[self.key], args=[self.token, KEY_SECONDS])
        except self.errors as error:
            self.degrade(error)
            return None
        return None if noted is None else int(noted)

    def note(self, cursor: int) -> bool:
        """Note the cursor; True when the Batch row is due a checkpoint."""
        if not self.degraded:
            try:
                noted = self.call_note(cursor)
            except self.errors as error:
                self.degrade(error)
                return True
            if noted == 0:
                raise ClaimLost
            if noted == -1:
                self.degrade("the note is gone (Redis restarted?)")
        return self.degraded or time.monotonic() - self.last_checkpoint >= self.interval

    def call_note(self, cursor: int) -> int:
        """Send this note; return the reply to the previous one (1 for the first).

        EVALSHA on a connection held for the claim: redis-py's client call costs twice the
        CPU (pool, retries, metrics hooks), and this runs once per message. The reply is read
        at the next note, by when it has long arrived, so sending never waits for Redis: once
        written to the socket the note reaches Redis even if this process is killed."""
        if self.connection is None:
            self.client.script_load(NOTE_SCRIPT)  # EVALSHA needs it in Redis's script cache
            self.connection = self.client.connection_pool.get_connection()
        previous = self.connection.read_response() if self.awaiting_reply else 1
        self.connection.send_packed_command([self.note_head + bulk_string(b"%d" % cursor)])
        self.awaiting_reply = True
        return previous

    def checkpointed(self) -> None:
        self.last_checkpoint = time.monotonic()

    def forget(self) -> None:
        """The row holds everything: the note is no longer needed."""
        self.release()
        with contextlib.suppress(*self.errors):  # else it expires
            self.client.delete(self.key)

    def release(self) -> None:
        """The held connection back to the pool (the claim has stopped noting), its last
        reply read so that the next user of the connection does not get it."""
        connection, self.connection = self.connection, None
        if connection is None:
            return
        if self.awaiting_reply:
            self.awaiting_reply = False
            try:
                connection.read_response()
            except self.errors:
                connection.disconnect()
        self.client.connection_pool.release(connection)

    def degrade(self, error) -> None:
        logger.warning("Progress notes in Redis unavailable (%s): writing each one to the "
                       "database for %s.", error, self.key)  # fmt: skip
        self.degraded = True
        if self.connection is not None:
            self.connection.disconnect()  # its state is unknown: never back to the pool
            self.awaiting_reply = False
            self.release()


def bulk_string(value: bytes) -> bytes:
    """One argument of a Redis command in RESP."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


_clients: dict[str, object] = {}


def notes_for(*, batch, token: str, redis_url: str | None) -> RedisNotes | DatabaseNotes:
    """The notes of one claim: in Redis when there is one, else in the row alone."""
    if not redis_url:
        return DatabaseNotes()
    if redis_url not in _clients:
        redis = app_settings.import_optional("redis", extra="redis")
        _clients[redis_url] = redis.Redis.from_url(
            redis_url, socket_timeout=2, socket_connect_timeout=2
        )
    return RedisNotes(_clients[redis_url], batch=batch, token=token)
