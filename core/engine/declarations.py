"""What a registered generator or effect must be to serve, checked at start: a declaration that
could not serve fails its plugin there, naming it, rather than every request later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from .codecs.encoders import Encoder
from .effect import Effect
from .generator import Generator


def declaration_problem(item: Generator | Effect) -> None:
    """ValueError for a generator or effect that cannot serve: parameters that are no pydantic
    model, have no JSON Schema (or one holding infinity or NaN), have an aliased field or whose
    defaults break their own rules; a run that is no function."""
    kind = "generator" if isinstance(item, Generator) else "effect"
    run = item.generate if isinstance(item, Generator) else item.apply
    if not callable(run):
        what = "generate" if kind == "generator" else "apply"
        raise ValueError(f"{kind} {item.name}: {what} is not callable, got {run!r}")
    model = item.parameters
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ValueError(f"{kind} {item.name}: parameters must be a pydantic BaseModel class, got {model!r}")
    try:
        schema = model.model_json_schema()
    except Exception as exc:  # pydantic's errors for a field type with no schema, and the like
        raise ValueError(f"{kind} {item.name}: parameters {model.__name__} have no JSON Schema "
                         f"({type(exc).__name__}: {exc})") from None
    found = non_finite(schema)
    if found:  # written as Infinity or NaN, which no JSON parser (the studio page's) reads
        where, value = found
        raise ValueError(f"{kind} {item.name}: parameters {model.__name__} state {value!r} at {where} of "
                         "their JSON Schema, which JSON cannot hold: give a finite default or bound")
    aliased = next(((name, alias) for name, info in model.model_fields.items()
                    for alias in (info.alias, info.validation_alias, info.serialization_alias)
                    if alias is not None and alias != name), None)
    if aliased:  # requests are checked by field name, the schema and pydantic go by the alias
        raise ValueError(f"{kind} {item.name}: parameters {model.__name__}: field {aliased[0]} has the alias "
                         f"{aliased[1]!r}, which requests could not use: rename the field to the name "
                         "requests send, with no alias")
    defaults_problem(kind, item.name, model)


def defaults_problem(kind: str, name: str, model: type[BaseModel]) -> None:
    """ValueError when the model's defaults break its rules: a field's own, or, when every field
    has a default (a request may send none), the model's cross-field ones too."""
    fields = model.model_fields
    # A None default is the common "not given" of `size: int = None`, which pydantic never validates.
    defaults = {field: value for field, info in fields.items() if not info.is_required()
                for value in (info.get_default(call_default_factory=True),) if value is not None}
    whole = not any(info.is_required() for info in fields.values())
    try:
        model.model_validate(defaults, context={"count": 1})
    except ValidationError as exc:
        broken = [f"{'.'.join(map(str, e['loc']))} = {defaults[e['loc'][0]]!r}: {e['msg']}"
                  for e in exc.errors()
                  if e["loc"] and e["loc"][0] in defaults and e["type"] != "extra_forbidden"]
        if broken:
            raise ValueError(f"{kind} {name}: a default of {model.__name__} breaks its own rules: "
                             + "; ".join(broken)) from None
        # With a field left required, a model-level rule cannot be judged on the defaults alone.
        rules = [_said(e) for e in exc.errors() if not e["loc"]] if whole else []
        if rules:
            raise ValueError(f"{kind} {name}: the defaults of {model.__name__} break its own rules: "
                             + "; ".join(rules)) from None
    except Exception:  # a validator's own bug on the defaults: said per request, with its message
        pass


def _said(error: Any) -> str:
    """A validator's own words: its ValueError's message, without pydantic's 'Value error, '."""
    raised = (error.get("ctx") or {}).get("error")
    return str(raised) if isinstance(raised, Exception) else str(error["msg"])


def non_finite(value: Any, path: str = "") -> tuple[str, float] | None:
    """Where in a JSON Schema an infinity or NaN sits (e.g. ``properties.scale.default``), if anywhere."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    items: list[tuple[Any, Any]] = (list(value.items()) if isinstance(value, Mapping)
                                    else list(enumerate(value)) if isinstance(value, (list, tuple)) else [])
    for key, inner in items:
        found = non_finite(inner, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def format_problem(kind: str, name: str, modality: str, wrong: Sequence[str],
                   encoders: Mapping[str, Encoder]) -> str:
    fitting = sorted(f for f, e in encoders.items() if e.modality == modality)
    named = ", ".join(map(repr, wrong))
    plural = "s" if len(wrong) > 1 else ""
    return (f"{kind} {name} declares format{plural} {named} with no {modality} encoder "
            "registered (register it with register_encoders, e.g. museforge.IMAGE_ENCODERS; "
            f"{modality} formats now: {', '.join(fitting) or 'none'})")
