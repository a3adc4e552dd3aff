"""Translate between HTTP/JSON and protobuf for the gateway: requests in, replies and errors out.

Bodies and replies use the standard proto3 JSON mapping (lowerCamelCase names, int64 as
strings, bytes as base64, enums by name); snake_case names are accepted in requests too.
Errors follow Google's REST form: ``{"error": {"code": <http>, "status": "INVALID_ARGUMENT",
"message": ..., "details": [...]}}`` with the gRPC call's rich details (BadRequest field
violations, RetryInfo) carried over.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..engine.errors import MAX_DESCRIPTION_BYTES, MAX_FIELD_BYTES, MAX_MESSAGE_BYTES, clip
from .json_kinds import INTEGER_RANGES

HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
_RETRY_INFO = error_details_pb2.RetryInfo.DESCRIPTOR.full_name


class HttpError(Exception):
    """A request refused by the gateway itself, before any gRPC call."""

    def __init__(self, http_status: int, code: grpc.StatusCode, message: str, field: str = "",
                 headers: Mapping[str, str] | None = None, description: str = "") -> None:
        # Clipped as the services' errors are (security.md): a request's own text, echoed back
        # (a 10,000-character query name), never makes the error bigger than the limits.
        message = clip(message, MAX_MESSAGE_BYTES)
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message
        self.field = clip(field, MAX_FIELD_BYTES)
        self.headers = dict(headers or {})
        # The field violation's own text, without the field's name (the violation names it).
        self.description = clip(description or message, MAX_DESCRIPTION_BYTES)

    def body(self) -> dict[str, Any]:
        details = []
        if self.field:
            violation = {"field": self.field, "description": self.description}
            details.append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": [violation]})
        return error_body(self.http_status, self.code, self.message, details)


def bad_request(field: str, message: str) -> HttpError:
    return HttpError(400, grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {message}", field, description=message)


def error_body(http_status: int, code: grpc.StatusCode, message: str,
               details: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    return {"error": {"code": http_status, "status": code.name, "message": message, "details": list(details)}}


def rpc_error_body(error: grpc.RpcError) -> tuple[int, dict[str, Any], float | None]:
    """HTTP status, JSON body and Retry-After seconds (if the server advised one) for a failed call."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    message = error.details() if isinstance(error, grpc.Call) else str(error)
    status: status_pb2.Status | None = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
    details: list[dict[str, Any]] = []
    retry_after = None
    for detail in status.details if status is not None else ():
        try:
            details.append(json_format.MessageToDict(detail))
        except (json_format.Error, TypeError):  # a detail type this process does not know
            details.append({"@type": detail.type_url})
        if detail.type_url.endswith(_RETRY_INFO):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            retry_after = info.retry_delay.ToTimedelta().total_seconds()
    http = HTTP_STATUS.get(code, 500)
    return http, error_body(http, code, message or code.name, details), retry_after


def to_json(message: Message) -> dict[str, Any]:
    # Every field appears, zero values included: engine-side JSON readers (Unity's
    # JsonUtility, for one) need the keys to be there. A Struct field has presence, so the
    # printer leaves an unset one out: it is set empty ({}) first.
    from .json_presence import with_structs_present

    message = with_structs_present(message)
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)



def load_json(raw: bytes | bytearray) -> Any:
    """The parsed body (None when empty); invalid JSON is refused naming 'body'."""
    if not raw.strip():
        return None
    from .json_fields import no_duplicate_keys  # it builds on this module's errors

    try:
        # UTF-8 only (RFC 8259; a leading BOM, as some Windows tools write, is skipped): json.loads
        # would also guess UTF-16 or 32 and let encoded surrogates through.
        document = json.loads(str(raw, "utf-8-sig"), object_pairs_hook=no_duplicate_keys)
    except HttpError:
        raise
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request("body", f"not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise bad_request("body", "nested too deeply") from exc
    if _MAYBE_SURROGATE.search(raw):  # rare: only then is every string looked at
        where = _surrogate_at(document)
        if where is not None:
            raise bad_request(where, "holds a lone UTF-16 surrogate (U+D800 to U+DFFF), which is not text")
    return document


# json.loads turns a lone surrogate escape ("\ud800") into a str that no UTF-8 encoder (protobuf's
# included) takes; the body is strict UTF-8, so no other way in. A pair (an emoji as ensure_ascii
# writes it) is one character: only a high escape with no low one after it, or a low one with no
# high one before it, sends the body to the walk.
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
                              rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _surrogate_at(document: Any) -> str | None:
    """The field path (``inputs[0].name``) of the first string or key holding a lone surrogate."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if not _is_text(value):
                return path or "body"
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _is_text(key):
                    return path or "body"
                stack.append((f"{path}.{key}" if path else key, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    return None


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_body(raw: bytes | bytearray, request: Message) -> None:
    """Fill ``request`` from a JSON body; errors name the field (or 'body')."""
    document = load_json(raw)
    if document is None:
        return
    if not isinstance(document, dict):
        raise bad_request("body", f"must be a JSON object, got {type(document).__name__}")
    from .json_fields import check_fields

    check_fields(document, request.DESCRIPTOR)
    try:
        json_format.ParseDict(document, request)
    except json_format.ParseError as exc:
        from .json_kinds import parse_failure

        raise bad_request(*parse_failure(document, request.DESCRIPTOR, str(exc))) from exc
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. NaN where a Struct needs a number
        raise bad_request("body", str(exc)) from exc
    except RecursionError as exc:
        raise bad_request("body", "nested too deeply") from exc


def field_in(message: str) -> str:
    """The field json_format's message names, as a path through the nested messages ('Failed to
    parse event field: Failed to parse stars field: ...' is event.stars), else 'body'."""
    path = re.findall(r"Failed to parse (\S+) field", message)
    unknown = re.search(r'has no field named "([^"]*)"', message)
    if unknown:
        path.append(unknown.group(1))
    return ".".join(path) or "body"


_PARSE_PREFIX = re.compile(r"^(?:Failed to parse \S+ field: )+")


def parse_reason(message: str) -> str:
    """json_format's reason alone: the field path it repeats in front ('Failed to parse seed field:
    Value out of range: -5.' is 'Value out of range: -5.') is already the violation's field."""
    return _PARSE_PREFIX.sub("", message) or message


def set_path_fields(request: Message, variables: Mapping[str, str]) -> None:
    """Path variables win; a body that says otherwise is refused rather than silently overridden."""
    for name, value in variables.items():
        current = getattr(request, name)
        if current and current != value:
            raise bad_request(name, f"the path says {value!r} but the body says {current!r}")
        setattr(request, name, value)


def apply_query(request: Message, query: Mapping[str, Sequence[str]], path_fields: Sequence[str]) -> None:
    """Query parameters set scalar fields by proto or JSON name; anything else is refused."""
    fields = {f.name: f for f in request.DESCRIPTOR.fields}
    fields.update({f.json_name: f for f in request.DESCRIPTOR.fields})
    named: dict[str, str] = {}
    for key, values in query.items():
        field = fields.get(key)
        if field is None or field.name in path_fields or field.message_type is not None:
            accepted = sorted({f.json_name for f in request.DESCRIPTOR.fields if f.message_type is None}
                              - set(path_fields))
            raise bad_request(key or "query", f"unknown query parameter {key!r} "
                              f"(accepted: {', '.join(accepted) or 'none'})")
        if field.name in named:  # page_size and pageSize: one field under its two names
            raise bad_request(key, f"given twice (as {named[field.name]!r} and {key!r})")
        named[field.name] = key
        parsed = [scalar(field, key, v) for v in values]
        if is_repeated(field):
            getattr(request, field.name).extend(parsed)
        elif len(parsed) != 1:
            raise bad_request(key, "given more than once")
        else:
            try:
                setattr(request, field.name, parsed[0])
            except (ValueError, TypeError) as exc:
                raise bad_request(key, str(exc)) from exc


def is_repeated(field: Any) -> bool:
    # protobuf 6 added is_repeated and later releases dropped label.
    flag = getattr(field, "is_repeated", None)
    return bool(flag) if flag is not None else field.label == FieldDescriptor.LABEL_REPEATED


_INTEGERS = frozenset(INTEGER_RANGES)  # every protobuf integer type


_WHOLE = re.compile(r"-?[0-9]+")


def scalar(field: Any, key: str, text: str) -> Any:  # a FieldDescriptor (pure or upb)
    kind = field.type
    try:
        if kind == FieldDescriptor.TYPE_BOOL:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError("expected true or false")
            return text.lower() in ("true", "1")
        if kind in _INTEGERS:
            if not _WHOLE.fullmatch(text):  # int() also reads "1_0" and other scripts' digits
                raise ValueError("expected a whole number in ASCII digits")
            return int(text)
        if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
            number = float(text)
            if not math.isfinite(number):
                raise ValueError("must be finite")
            return number
        if kind == FieldDescriptor.TYPE_ENUM:
            if _WHOLE.fullmatch(text):  # by number, as proto3 JSON allows
                return int(text)
            value = field.enum_type.values_by_name.get(text.upper())
            if value is None:
                raise ValueError(f"one of {', '.join(field.enum_type.values_by_name)}")
            return value.number
        if kind == FieldDescriptor.TYPE_BYTES:
            raise ValueError("bytes go in a request body, not the query")
    except ValueError as exc:
        raise bad_request(key, f"{text!r} is not valid ({exc})") from exc
    return text
