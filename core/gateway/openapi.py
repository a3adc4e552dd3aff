"""The OpenAPI 3.1 document of the HTTP/JSON gateway, generated from its routes and the protos.

Schemas follow the proto3 JSON mapping the gateway speaks: lowerCamelCase names, 64-bit
integers as strings in replies (a number or a string in requests, as the mapping reads them),
bytes as base64 strings, enums by name, Struct as a free object, Timestamp and Duration as
strings. ``museforge openapi`` prints it; a served gateway
answers it at ``/openapi.json``.
"""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor

from .. import __version__
from .json_codec import is_repeated
from .routes import OPEN_PATHS, ROUTES, VARIABLE, Route

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
_WIDE = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
         FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64}
# Well-known types have their own JSON forms.
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$",
                                 "description": "seconds with an 's' suffix, e.g. \"30s\" or \"1.5s\""},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}},
                            "required": ["@type"], "additionalProperties": True},
    "google.protobuf.FieldMask": {"type": "string"},
}


class _Schemas:
    """Collects component schemas for every message reachable from the routes.

    A request may give a 64-bit integer as a JSON number (``"seed": 42``) where a reply writes a
    string, so a message that holds one (at any depth) has a request form of its own: under its
    own name when no reply holds it, else under ``<name>-input`` (no proto name has a '-').
    """

    def __init__(self, replies: set[str]) -> None:
        self.components: dict[str, dict[str, Any]] = {}
        self.replies = replies  # the messages some reply holds
        self.wide: dict[str, bool] = {}

    def ref(self, descriptor: Any, request: bool = False) -> dict[str, Any]:  # a Descriptor (pure or upb)
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        name = descriptor.full_name
        request = request and self.holds_wide(descriptor)
        if request and name in self.replies:
            name += "-input"
        if name not in self.components:
            self.components[name] = {}  # placed first: recursive messages refer back to it
            self.components[name] = self.message(descriptor, request)
        return {"$ref": f"#/components/schemas/{name}"}

    def holds_wide(self, descriptor: Any) -> bool:
        name = descriptor.full_name
        if name not in self.wide:
            self.wide[name] = False  # a message that refers back to itself adds nothing on the way
            self.wide[name] = name not in _WELL_KNOWN and any(
                f.type in _WIDE or (f.message_type is not None and self.holds_wide(f.message_type))
                for f in descriptor.fields)
        return self.wide[name]

    def message(self, descriptor: Any, request: bool = False) -> dict[str, Any]:
        properties = {field.json_name: self.field(field, request) for field in descriptor.fields}
        return {"type": "object", "properties": properties, "additionalProperties": False}

    def field(self, field: Any, request: bool = False) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self.single(value, request)}
        schema = self.single(field, request)
        if is_repeated(field):
            return {"type": "array", "items": schema}
        return schema

    def single(self, field: Any, request: bool = False) -> dict[str, Any]:
        if field.message_type is not None:
            return self.ref(field.message_type, request)
        if field.enum_type is not None:
            return enum_schema(field.enum_type)
        schema = dict(_SCALARS[field.type])
        if request and field.type in _WIDE:
            number: dict[str, Any] = {"type": "integer", "format": schema["format"]}
            if schema["format"] == "uint64":
                number["minimum"] = 0
            return {"oneOf": [number, schema]}
        return schema


def reply_messages(routes: tuple[Route, ...]) -> set[str]:
    """The full names of the messages the routes' replies hold, at any depth."""
    found: set[str] = set()
    todo = [route.response.DESCRIPTOR for route in routes]
    while todo:
        descriptor = todo.pop()
        if descriptor.full_name in found:
            continue
        found.add(descriptor.full_name)
        todo.extend(f.message_type for f in descriptor.fields if f.message_type is not None)
    return found


def enum_schema(enum: EnumDescriptor) -> dict[str, Any]:
    return {"type": "string", "enum": [value.name for value in enum.values]}


ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "integer", "description": "the HTTP status"},
        "status": {"type": "string", "description": "the gRPC status code name, e.g. INVALID_ARGUMENT"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": _WELL_KNOWN["google.protobuf.Any"],
                    "description": "google.rpc details: BadRequest (field violations), RetryInfo, ..."},
    }, "required": ["code", "status", "message"]}},
    "required": ["error"],
}


def operation(route: Route, schemas: _Schemas) -> dict[str, Any]:
    parameters = openapi_path(route.template)[1]
    if not route.takes_body:
        for field in route.request.DESCRIPTOR.fields:
            if field.name not in route.path_fields and field.message_type is None:
                parameters.append({"name": field.json_name, "in": "query", "required": False,
                                   "schema": schemas.field(field, request=True)})
    result = schemas.ref(route.response.DESCRIPTOR)
    if route.streaming:
        line = {"oneOf": [
            {"type": "object", "properties": {"result": result}, "required": ["result"]},
            {"$ref": "#/components/schemas/Error"},
        ]}
        content = {"application/x-ndjson": {"schema": line}}
        description = "one JSON object per line: {\"result\": ...} per message, {\"error\": ...} if it fails"
    else:
        content = {"application/json": {"schema": result}}
        description = "OK"
    entry: dict[str, Any] = {
        "operationId": f"{route.service.rsplit('.', 1)[-1]}_{route.rpc}",
        "summary": route.summary,
        "description": f"Calls gRPC `{route.method.lstrip('/')}`.",
        "tags": [route.service],
        "parameters": parameters,
        "responses": {
            "200": {"description": description, "content": content},
            "default": {"description": "the call failed; `status` is the gRPC code",
                        "headers": {"Retry-After": {
                            "description": "seconds to wait, when the call was refused for load (429, 503)",
                            "schema": {"type": "integer"}}},
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        },
    }
    if route.rpc == "Check":  # health answers 503 with its usual body when not serving
        entry["responses"]["503"] = {"description": "not serving", "content": content}
    if route.takes_body:
        # Required, if only as {}: the gateway takes a POST only with Content-Type: application/json,
        # which a browser cannot send to another origin without asking first (see app.py).
        body = schemas.ref(route.request.DESCRIPTOR, request=True)
        entry["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}},
                                "description": "the request message, sent with Content-Type: "
                                "application/json (`{}` when there is nothing to say); path fields "
                                "may be left out"}
    if route.template in OPEN_PATHS:
        entry["security"] = []
    return entry


def openapi_path(template: str) -> tuple[str, list[dict[str, Any]]]:
    """OpenAPI's form of a route template and its path parameters.

    ``{name=jobs/*}`` matches ``jobs/<id>``: OpenAPI has no such patterns (a parameter
    cannot hold a '/'), so it becomes the literal ``jobs/`` and an ``{id}`` parameter,
    which describes the same URLs.
    """
    parameters: list[dict[str, Any]] = []

    def variable(found: re.Match[str]) -> str:
        name, shape = found.group(1), found.group(2)
        if shape:
            literal = shape.rsplit("/", 1)[0]
            parameters.append({"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                               "description": f"the part after '{literal}/' of the gRPC field `{name}`"})
            return f"{literal}/{{id}}"
        parameters.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
        return f"{{{name}}}"

    return VARIABLE.sub(variable, template), parameters


def openapi_document() -> dict[str, Any]:
    schemas = _Schemas(reply_messages(ROUTES))
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(openapi_path(route.template)[0], {})[route.verb.lower()] = operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "museforge HTTP/JSON gateway",
            "version": __version__,
            "description": "The museforge.v1 gRPC API (generators, effects, jobs, feedback, health) over "
            "HTTP/1.1 and JSON, for clients without HTTP/2 gRPC. Same auth, limits and errors as gRPC. "
            "Every POST needs a JSON body and `Content-Type: application/json`, even one with nothing "
            "to say (`{}`): without it the answer is 415.",
        },
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}],
        "paths": paths,
        "components": {
            "schemas": {**dict(sorted(schemas.components.items())), "Error": ERROR_SCHEMA},
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "an API key from `museforge keys create` "
                                           "(only when the server has auth on)"}},
        },
    }
