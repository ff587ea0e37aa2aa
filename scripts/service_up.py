"""Exit 0 when the named service answers at the URL, 1 otherwise (used by scripts/test.sh)."""

import socket
import sys
from urllib.parse import urlparse

DEFAULT_PORTS = {"postgres": 5432, "redis": 6379}


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    service, url = sys.argv[1], sys.argv[2]
    sys.exit(0 if reachable(url, DEFAULT_PORTS[service]) else 1)
