"""The shared send-rate limit (MAX_SEND_RATE): one GCRA bucket in Redis for every worker on
every machine, or one per process without Redis.

GCRA ("virtual scheduling"): the key holds the time at which the bucket is next empty (TAT).
Each call reserves one slot and returns how long the caller waits for it. Redis's own clock
is used, so workers on machines with skewed clocks still agree.
"""

import logging
import threading
import time

from .. import app_settings

logger = logging.getLogger(__name__)

# Returns the wait in microseconds.
RATE_LIMIT_SCRIPT = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
local wait = new_tat - now - burst
if wait < 0 then wait = 0 end
return wait
"""
# After the site's prefix (app_settings.redis_key_prefix): two sites sharing one Redis database
# each keep their own bucket.
RATE_LIMIT_KEY = "send_rate"
BURST_MESSAGES = 1  # strict pacing: ESP quotas are per second, a burst would exceed them


class LocalRateLimiter:
    """The same GCRA in this process only: the fallback without Redis."""

    def __init__(self, rate: float, burst: int = BURST_MESSAGES):
        self.interval = 1.0 / rate
        self.burst = burst * self.interval
        self.tat = 0.0
        self.lock = threading.Lock()

    def reserve(self) -> float:
        """Seconds to wait before the next send."""
        with self.lock:
            now = time.monotonic()
            self.tat = max(self.tat, now) + self.interval
            return max(0.0, self.tat - now - self.burst)

    def wait(self) -> None:
        time.sleep(self.reserve())


class RedisRateLimiter:
    """A token bucket in Redis shared by every worker on every machine."""

    def __init__(self, rate: float, url: str, *, key: str | None = None):
        redis = app_settings.import_optional("redis", extra="redis")
        self.redis_errors = redis.RedisError
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.script = self.client.register_script(RATE_LIMIT_SCRIPT)
        self.key = key or app_settings.redis_key_prefix() + RATE_LIMIT_KEY
        self.interval_us = int(1_000_000 / rate)
        self.fallback = LocalRateLimiter(rate)

    def reserve(self) -> float:
        burst_us = BURST_MESSAGES * self.interval_us
        try:
            wait_us = self.script(keys=[self.key], args=[self.interval_us, burst_us])
        except (self.redis_errors, OSError) as error:
            logger.warning("Send-rate limit in Redis unavailable (%s): limiting locally.", error)
            return self.fallback.reserve()
        return int(wait_us) / 1_000_000

    def wait(self) -> None:
        time.sleep(self.reserve())


# Keyed on exactly what builds a limiter: a new rate, Redis or key prefix gets a new one.
_limiters: dict[tuple[float, str | None, str], RedisRateLimiter | LocalRateLimiter] = {}


def get_rate_limiter() -> RedisRateLimiter | LocalRateLimiter | None:
    """The limiter for MAX_SEND_RATE (None when unlimited), one per process and settings."""
    rate = app_settings.get("MAX_SEND_RATE")
    if not rate:
        return None
    key = (rate, app_settings.redis_url(), app_settings.redis_key_prefix())
    if key not in _limiters:
        _limiters[key] = RedisRateLimiter(rate, key[1]) if key[1] else LocalRateLimiter(rate)
    return _limiters[key]
