"""Exit 1, saying what is wrong and how to fix it, when a port `make run` needs is taken
(used by scripts/run.sh before it starts anything)::

    python scripts/check_ports.py PORT=127.0.0.1:8000 EMAIL_PORT=127.0.0.1:1025

Each argument names the environment variable that chooses the port, so that the message can
say how to pick another one.
"""

import socket
import sys

WHO_NEEDS_IT = {"PORT": "the web site", "EMAIL_PORT": "the local SMTP sink"}
TRIES = 100  # ports above a busy one searched for a free one to suggest


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on it now. SO_REUSEADDR, as runserver and the sink bind:
    a port still in TIME_WAIT from an earlier run counts as free, a listening one does not."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port_above(host: str, port: int) -> int | None:
    return next((p for p in range(port + 1, port + TRIES) if port_is_free(host, p)), None)


def busy_port_message(variable: str, host: str, port: int) -> str:
    suggestion = free_port_above(host, port) or "<another port>"
    return (
        f"make run: port {port} on {host} is already in use, and {WHO_NEEDS_IT[variable]} "
        f"needs it.\n"
        f"  Another `make run` may still be running, or another program listens there "
        f"(`ss -ltnp 'sport = :{port}'` shows which).\n"
        f"  Stop it, or choose another port: {variable}={suggestion} make run\n"
    )


def parse(argument: str) -> tuple[str, str, int]:
    variable, address = argument.split("=", 1)
    host, port = address.rsplit(":", 1)
    return variable, host, int(port)


def main(arguments: list[str]) -> int:
    busy = [parse(a) for a in arguments if not port_is_free(*parse(a)[1:])]
    for variable, host, port in busy:
        sys.stderr.write(busy_port_message(variable, host, port))
    return 1 if busy else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
