"""What a client sent checked field by field, the same for a generator and an effect.

Unknown keys, schema violations and the model's own cross-field bounds (a validator raising
:class:`~museforge.engine.generator.LimitExceeded`, which sees the request's ``count``) all become
``google.rpc`` field violations: ``parameters.<field>``, or the field a bound names first. The
output format and the seed are checked here too, and an effect's number of inputs.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Container, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ..near_names import did_you_mean
from .allowed_values import is_type_error, takes
from .codecs.image_formats import side_problem
from .effect import Effect, Picture
from .errors import FieldViolation, request_field
from .generator import LimitExceeded
from .latent import Variations
from .plugin_faults import plugin_code, sized

if TYPE_CHECKING:
    from ..config import Settings

MAX_SEED = 2**64 - 1
# Formats asked for by their files' extension, as the command line takes them (-f jpg).
FORMAT_ALIASES = {"jpg": "jpeg", "midi": "mid", "usd": "usda"}


def _violations_from(error: ValidationError, model: type[BaseModel]) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    properties: dict[str, Any] | None = None
    for item in error.errors():
        limit = (item.get("ctx") or {}).get("error")
        if isinstance(limit, LimitExceeded):  # a model's cross-field bound names its own fields
            found.append(FieldViolation(request_field(limit.fields[0]) if limit.fields else "parameters",
                                        limit.message))
            continue
        # Union members add their tag to the location ("digit.int"); keep the field path only.
        path = [str(p) for p in item["loc"] if not str(p).startswith(("function-", "literal["))]
        path = [p for p in path if p not in ("int", "str", "float", "bool", "none")] or path
        # A model-level rule (a model_validator) has no location: the parameters as a whole.
        field = ".".join(["parameters", *path])
        # pydantic says "unable to parse input string" of a number too large (1e300) too.
        message = "far too large a number" if item["type"] == "int_parsing_size" else item["msg"]
        if is_type_error(item["type"]) and len(path) == 1:
            if any(v.field == field for v in found):
                continue  # one union member's complaint is enough, with what the field takes
            properties = properties if properties is not None else _properties(model)
            what = takes(properties.get(path[0], {}))
            message = f"{message}; {path[0]} takes {what}" if what else message
        found.append(FieldViolation(field, message))
    return found


def _properties(model: type[BaseModel]) -> dict[str, Any]:
    try:
        return dict(model.model_json_schema().get("properties", {}))
    except Exception:  # a schema that cannot be made was refused at registration; say no more
        return {}


def validate_parameters(
    name: str, model: type[BaseModel], parameters: Mapping[str, Any] | None, count: int = 1,
    kind: str = "generator",
) -> tuple[BaseModel | None, list[FieldViolation]]:
    """Unknown keys and schema violations, each named ``parameters.<field>``.

    ``count`` reaches the model's validators (see ``museforge.engine.generator.request_count``).
    A validator that fails otherwise than pydantic reports (a RuntimeError) is the ``kind``'s
    fault: INTERNAL naming it, the exception's type and message.
    """
    violations: list[FieldViolation] = []
    params_dict = dict(parameters or {})
    known_fields = model.model_fields
    for key, value in list(params_dict.items()):
        if key not in known_fields:
            guess = did_you_mean(str(key), known_fields)
            violations.append(FieldViolation(
                f"parameters.{key}",
                f"unknown parameter{guess}; {name} accepts: {', '.join(known_fields) or 'none'}",
            ))
        elif _non_finite_text(value) and _takes_float(known_fields[key].annotation):
            # pydantic reads "nan" and "inf" as numbers, then reports a bound they fail ("less than
            # or equal to 2"), which says nothing of what was wrong.
            violations.append(FieldViolation(f"parameters.{key}", f"must be a finite number, got {value!r}"))
            del params_dict[key]
        elif isinstance(value, bool) and _number_not_flag(known_fields[key].annotation):
            # pydantic's lax mode reads true as 1: bars=true would make one bar, top_k=true greedy sampling.
            violations.append(FieldViolation(f"parameters.{key}",
                                             f"must be a number, not a boolean ({str(value).lower()})"))
            del params_dict[key]
    params: BaseModel | None = None
    with plugin_code(f"{kind} {name}", "its parameter model's validation"):
        try:
            params = model.model_validate({k: v for k, v in params_dict.items() if k in known_fields},
                                          context={"count": count})
        except ValidationError as exc:
            violations.extend(_violations_from(exc, model))
    return params, violations


def _non_finite_text(value: object) -> bool:
    """NaN or an infinity, as text ("nan", "inf") or as a number (the CLI's JSON reads NaN)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if not isinstance(value, str):
        return False
    try:
        return not math.isfinite(float(value))
    except ValueError:
        return False


def _takes_float(annotation: object) -> bool:
    return annotation is float or any(_takes_float(arg) for arg in get_args(annotation))


def _types_in(annotation: object) -> set[object]:
    """The types an annotation is made of (``int | None`` -> {int, NoneType}; Annotated unwrapped;
    ``Literal[False]`` -> {bool}: a literal stands for its value's type)."""
    if get_origin(annotation) is Literal:
        return {type(value) for value in get_args(annotation)}
    return {annotation, *(t for arg in get_args(annotation) for t in _types_in(arg))}


def _number_not_flag(annotation: object) -> bool:
    """A field that takes a number, and neither a boolean nor text (whose validators speak for
    themselves: an instrument is a number or a name)."""
    types = _types_in(annotation)
    return bool(types & {int, float}) and not types & {bool, str}


def check_format_and_seed(name: str, formats: tuple[str, ...], encoders: Container[str], fmt: str,
                          seed: int | None, violations: list[FieldViolation]) -> tuple[str, int]:
    """The output format (checked against the declaration and the encoders) and the seed (drawn
    when none was sent); problems are added to ``violations``."""
    asked = fmt.lower()  # an alias (jpg) only where no plugin declared a format of that name
    fmt = asked if asked in formats else FORMAT_ALIASES.get(asked, asked)
    if fmt not in formats or fmt not in encoders:
        violations.append(FieldViolation(
            "format", f"{asked!r} is not supported by {name}; use one of {list(formats)}"))
    if seed is None:
        seed = secrets.randbits(63)
    elif not 0 <= seed <= MAX_SEED:
        violations.append(FieldViolation("seed", "must be between 0 and 2**64-1"))
    return fmt, seed


def output_side_problem(effect: Effect, params: Any, inputs: Sequence[Any], fmt: str) -> list[FieldViolation]:
    """``format`` refused when the images the effect will return are too large for it."""
    if params is None or not inputs or not isinstance(inputs[0], Picture):
        return []
    width, height = (sized(f"effect {effect.name}", effect.output_size, params, inputs)
                     if effect.output_size is not None else (inputs[0].width, inputs[0].height))
    problem = side_problem(fmt, width, height)
    return [] if problem is None else [FieldViolation("format", problem)]


def check_input_count(effect: Effect, given: int) -> FieldViolation | None:
    """A problem when an effect is sent fewer or more inputs than it takes."""
    if effect.min_inputs <= given <= effect.max_inputs:
        return None
    wanted = (str(effect.min_inputs) if effect.min_inputs == effect.max_inputs
              else f"{effect.min_inputs} to {effect.max_inputs}")
    return FieldViolation("inputs", f"{effect.name} takes {wanted} input(s), got {given}")


def output_bounds(what: str, latent_shape: Callable[[Any], Sequence[int]] | None, params: BaseModel,
                  count: int, settings: Settings) -> list[FieldViolation]:
    """The server's bounds a generator's latent parameters can be held to before it runs: the walks'
    frames (max_artifacts) and the noise explicit draws take to compute (max_output_bytes)."""
    if not isinstance(params, Variations):
        return []
    frames = count * params.images_per_item()
    if frames > settings.max_artifacts:
        field, asks = (("parameters.frames", "count and parameters.frames ask")
                       if params.interpolate_to is not None else ("count", "count asks"))
        return [FieldViolation(field, f"{asks} for {frames:,} artifacts; this server makes at most "
                               f"{settings.max_artifacts:,} per request (max_artifacts)")]
    return draws_bound(what, latent_shape, params, settings.max_output_bytes)


def draws_bound(what: str, latent_shape: Callable[[Any], Sequence[int]] | None, params: Variations,
                max_bytes: int) -> list[FieldViolation]:
    """Explicit draws are computed by drawing their streams up to each index: bound that work
    as the output is bounded (max_output_bytes), so a list of draws cannot ask for gigabytes."""
    if params.draws is None or latent_shape is None:
        return []
    size = 1
    with plugin_code(what, "its latent_shape"):
        for side in latent_shape(params):
            size *= int(side)
    drawn = sum(draw.cost() for draw in params.draws) * size * 8  # float64 as numpy draws them
    if drawn <= max_bytes:
        return []
    return [FieldViolation("parameters.draws", f"these draws take about {drawn:,} bytes of noise to "
                           f"compute; this server allows {max_bytes:,} (max_output_bytes): lower their "
                           "index or nesting")]
