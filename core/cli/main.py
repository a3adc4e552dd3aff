"""The ``museforge`` command line: parse, run the command, and turn its failure into a message
and an exit code, the same way for every command."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import grpc

from ..client import field_violations
from ..config import ConfigError
from ..engine.errors import RequestError
from .output import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, fail
from .parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `museforge` alone: what there is to do, not "required: COMMAND"
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.handler(args)
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    except RequestError as exc:  # refused in this process (--local) ...
        return fail(exc.message, EXIT_FAILED, ((v.field, v.description) for v in exc.violations))
    except grpc.RpcError as exc:  # ... or by the server
        code = exc.code()
        if code == grpc.StatusCode.UNAVAILABLE and _unreachable(exc.details() or ""):
            tls = getattr(args, "tls_ca", None) is not None or getattr(args, "tls_cert", None) is not None
            if tls and any(w in (exc.details() or "").lower() for w in ("socket closed", "handshake", "ssl")):
                # Over TLS a refused handshake reads as a closed socket: say what it most likely was.
                return fail(f"the server closed the connection during the TLS handshake ({exc.details()}): "
                            "check --tls-ca is the CA that signed its certificate, and give --tls-cert and "
                            "--tls-key if it asks for client certificates (tls_client_ca)", EXIT_UNREACHABLE)
            return fail(f"no server answered ({exc.details()}); start one with `museforge serve` or pass "
                        "--server / --local", EXIT_UNREACHABLE)
        return fail(f"{code.name}: {exc.details()}", EXIT_FAILED, field_violations(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`museforge generators --json | head`): stop quietly, as
        # shell tools do, and keep Python from complaining while it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:  # a file the command reads or writes (an output folder it cannot make);
        # after BrokenPipeError, which is one too
        return fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), EXIT_FAILED)


# What gRPC says when no connection is made or it breaks; a server that answers UNAVAILABLE itself
# (a model unloaded, shutting down) gave a reason of its own, which is printed as it is.
_TRANSPORT = ("failed to connect", "connection refused", "dns resolution", "socket closed",
              "connections to all backends", "connection reset", "broken pipe", "endpoint closing",
              "cancelling all calls", "no connection", "unavailable to connect")


def _unreachable(details: str) -> bool:
    lowered = details.lower()
    return any(phrase in lowered for phrase in _TRANSPORT)


if __name__ == "__main__":
    sys.exit(main())
