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
from .output import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, ConnectionLost, fail, transport_failure
from .parser import build_parser
from .terminate import terminated_as_interrupted


def _unlisted(message: str, violations: Sequence[tuple[str, str]]) -> str:
    """The status message without its closing "(field, ...)" when each field has a line of its own
    below it (the server names them there for clients that read only the message)."""
    head, sep, tail = message.rpartition(" (")
    named = tail[:-1].split(", ") if sep and tail.endswith(")") else []
    listed = {field for field, _ in violations}
    return head if named and all(field in listed for field in named) else message


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `museforge` alone: what there is to do, not "required: COMMAND"
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "serve":
            return args.handler(args)
        with terminated_as_interrupted():  # a half-written output file is removed as on Ctrl-C
            return args.handler(args)
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)
    except ConnectionLost as exc:  # before RpcError: the stream had started, so no TLS advice
        return fail(str(exc), EXIT_UNREACHABLE)
    except RequestError as exc:  # refused in this process (--local) ...
        return fail(exc.message, EXIT_FAILED, ((v.field, v.description) for v in exc.violations))
    except grpc.RpcError as exc:  # ... or by the server
        code = exc.code()
        unreachable = code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN)
        if unreachable and transport_failure(exc.details() or ""):
            tls = getattr(args, "tls_ca", None) is not None or getattr(args, "tls_cert", None) is not None
            said = connection_problem(exc.details() or "", tls)
            if said:
                return fail(f"{said} ({exc.details()})", EXIT_UNREACHABLE)
            alternatives = "--server / --local" if hasattr(args, "local") else "--server"
            return fail(f"no server answered ({exc.details()}); start one with `museforge serve` or pass "
                        f"{alternatives}", EXIT_UNREACHABLE)
        violations = field_violations(exc)
        return fail(f"{code.name}: {_unlisted(exc.details() or '', violations)}", EXIT_FAILED, violations)
    except KeyboardInterrupt as exc:  # said, so a script's log shows why the command stopped
        said = str(exc)  # a training run stopped at a step says where it saved it
        print(f"museforge: interrupted{': ' + said if said else ''}", file=sys.stderr, flush=True)
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


def connection_problem(details: str, tls: bool) -> str:
    """What a failed connection most likely was: not gRPC at all, or TLS ('' when nothing points there)."""
    lowered = details.lower()
    if "failed parsing http/2" in lowered or "http1.x" in lowered:
        return ("something answers at that address, but not gRPC (an HTTP/1.1 server: the HTTP gateway's "
                "or the metrics port?): give the server's gRPC address, its --address (default "
                "127.0.0.1:50051)")
    if "certificate_verify_failed" in lowered:
        return ("the server's certificate was not signed by the CA given in --tls-ca (give the CA that "
                "signed it)")
    if "peer name" in lowered or "hostname" in lowered:
        return ("the server's certificate is for another name than the address dialled: give that name "
                "with --tls-server-name")
    if "security handshaker" in lowered or "private key" in lowered:
        return ("this client's TLS credentials cannot be used: --tls-cert and --tls-key must be a PEM "
                "certificate and its own private key")
    if tls and any(w in lowered for w in ("socket closed", "handshake", "ssl")):
        # Over TLS a handshake the server refused reads as a closed socket.
        return ("the server closed the connection during the TLS handshake: check --tls-ca is the CA "
                "that signed its certificate, and give --tls-cert and --tls-key if it asks for client "
                "certificates (tls_client_ca)")
    if not tls and "socket closed" in lowered:
        return ("the server closed the connection at once: if it serves TLS, give --tls-ca (its CA), "
                "else check the address")
    return ""


if __name__ == "__main__":
    sys.exit(main())
