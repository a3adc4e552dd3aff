"""Parameters as sent checked against a generator's or effect's model, each problem named by field.

Unknown keys, schema violations and the model's own cross-field bounds (a validator raising
:class:`~museforge.engine.generator.LimitExceeded`, which sees the request's ``count``) all become
``google.rpc`` field violations: ``parameters.<field>``, or the field a bound names first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import FieldViolation
from .generator import LimitExceeded


def _violations_from(error: ValidationError) -> list[FieldViolation]:
    found = []
    for item in error.errors():
        limit = (item.get("ctx") or {}).get("error")
        if isinstance(limit, LimitExceeded):  # a model's cross-field bound names its own fields
            found.append(FieldViolation(limit.fields[0] if limit.fields else "parameters", limit.message))
            continue
        # Union members add their tag to the location ("digit.int"); keep the field path only.
        path = [str(p) for p in item["loc"] if not str(p).startswith(("function-", "literal["))]
        path = [p for p in path if p not in ("int", "str", "float", "bool", "none")] or path
        found.append(FieldViolation("parameters." + ".".join(path), item["msg"]))
    return found


def validate_parameters(
    name: str, model: type[BaseModel], parameters: Mapping[str, Any] | None, count: int = 1
) -> tuple[BaseModel | None, list[FieldViolation]]:
    """Unknown keys and schema violations, each named ``parameters.<field>``.

    ``count`` reaches the model's validators (see ``museforge.engine.generator.request_count``).
    """
    violations: list[FieldViolation] = []
    params_dict = dict(parameters or {})
    known_fields = model.model_fields
    for key in params_dict:
        if key not in known_fields:
            violations.append(FieldViolation(
                f"parameters.{key}",
                f"unknown parameter; {name} accepts: {', '.join(known_fields) or 'none'}",
            ))
    params: BaseModel | None = None
    try:
        params = model.model_validate({k: v for k, v in params_dict.items() if k in known_fields},
                                      context={"count": count})
    except ValidationError as exc:
        violations.extend(_violations_from(exc))
    return params, violations
