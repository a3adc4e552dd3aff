"""What an Open Inference Protocol request may ask of a model, judged from its tensor headers.

Everything here reads only names, datatypes and shapes: a request that is refused costs
no decoding, no allocation and no session run, however big its tensors claim to be.

Limits, and where they come from:
- the model's declared inputs (names, datatypes, fixed dims, ``max_batch_size``); an input
  with a Triton ``reshape`` (a per-item scalar: [-1, 1], the model takes [-1]) may come in
  either shape, and every check after the header's reads the model's;
- per model, ``max_input_elements`` from its manifest: the largest request, all inputs
  together, which is what the plugin itself feeds the model in one call (like a
  generator's parameter schema bounds a Generate call);
- per server, ``max_message_bytes``: the decoded inputs, and the outputs sized from the
  model's output shapes (symbolic axes resolved from the inputs, ``height_x4`` = 4 x
  ``height`` by the manifest's ``output_axes``), must each fit in one message; a reply
  that could not be sent is refused before the model runs, not after.
All are properties of the request, so they answer INVALID_ARGUMENT (retrying never helps).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..engine.errors import FieldViolation, InvalidArgument
from ..inference import grpc_service_pb2 as pb
from ..runtime.sessions import LoadedModel, Runtime
from .oip_datatypes import OIP_DATATYPES, TensorError, TensorSpecLike, element_width
from .oip_decode import EMPTY_OR_NEGATIVE as _EMPTY_OR_NEGATIVE
from .oip_decode import named_inputs

# A BYTES element decodes to a pointer plus a Python bytes object (its header alone is 33 bytes).
BYTES_ELEMENT_COST = 8 + 33


def _element_bytes(datatype: str) -> int:
    if datatype == "BYTES":
        return BYTES_ELEMENT_COST
    return element_width(datatype)


def _field(where: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{where}: {message}", [FieldViolation(where, message)])


def _fits(declared: Sequence[int], shape: tuple[int, ...]) -> bool:
    return len(shape) == len(declared) and all(d < 0 or d == g for d, g in zip(declared, shape,
                                                                              strict=True))


def _reshaped(declared: Sequence[int], shape: tuple[int, ...], reshape: Sequence[int]) -> tuple[int, ...]:
    """``shape`` (which fits ``declared``) as the model takes it: the sizes of its -1 axes fill
    the -1 axes of ``reshape`` in order, as Triton does ([4, 1] for [-1, 1] -> [4] for [-1])."""
    sizes = iter([g for d, g in zip(declared, shape, strict=True) if d < 0])
    return tuple(next(sizes) if d < 0 else d for d in reshape)


def header_shapes(request: pb.ModelInferRequest,
                  expected: Sequence[TensorSpecLike]) -> dict[str, tuple[int, ...]]:
    """Each input's shape as the model takes it, in request order, once its header fits the
    model's declared input (for a reshaped input, either of its forms)."""
    specs = {spec.name: spec for spec in expected}
    shapes: dict[str, tuple[int, ...]] = {}
    for i, tensor in named_inputs(request):
        where = f"inputs[{i}]"
        spec = specs.get(tensor.name)
        if spec is None:
            known = ", ".join(repr(s) for s in specs) or "none"
            raise TensorError(f"{where}.name", f"unknown input {tensor.name!r}; model inputs: {known}")
        if tensor.datatype != spec.datatype:
            got = tensor.datatype if tensor.datatype in OIP_DATATYPES else f"unknown {tensor.datatype!r}"
            raise TensorError(f"{where}.datatype", f"input {tensor.name!r} must be {spec.datatype}, "
                              f"got {got}")
        shape = tuple(tensor.shape)
        if any(d < 1 for d in shape):
            raise TensorError(f"{where}.shape", _EMPTY_OR_NEGATIVE.format(list(shape)))
        reshape: Sequence[int] | None = getattr(spec, "reshape", None)  # protocol messages have none
        if _fits(spec.shape, shape):
            shapes[tensor.name] = shape if reshape is None else _reshaped(spec.shape, shape, reshape)
        elif reshape is not None and _fits(reshape, shape):
            shapes[tensor.name] = shape
        else:
            forms = " or ".join(str(list(s)) for s in (spec.shape, reshape) if s is not None)
            raise TensorError(f"{where}.shape", f"input {tensor.name!r} has shape {list(shape)}; "
                              f"model expects {forms} (-1 = any size)")
    missing = [name for name in specs if name not in shapes]
    if missing:
        raise TensorError("inputs", f"missing model input(s): {', '.join(map(repr, missing))}")
    return shapes


def check_batch(model: LoadedModel, shapes: Mapping[str, tuple[int, ...]]) -> None:
    batch = model.max_batch_size
    sizes = {s[0] for s in shapes.values() if s}
    if batch and len(sizes) > 1:
        raise InvalidArgument("inputs disagree on the batch size",
                              [FieldViolation("inputs", f"batch sizes {sorted(sizes)} differ")])
    if batch and sizes and max(sizes) > batch:
        raise _field("inputs[0].shape", f"batch {max(sizes)} exceeds max_batch_size {batch}")


def _biggest(shapes: Mapping[str, tuple[int, ...]]) -> str:
    """The request field of the input with the most elements: the one to make smaller."""
    counts = [math.prod(s) for s in shapes.values()]
    return f"inputs[{counts.index(max(counts))}].shape"


def check_size(model: LoadedModel, shapes: Mapping[str, tuple[int, ...]],
               datatypes: Mapping[str, str], max_bytes: int) -> None:
    """The request's inputs and its reply within the model's and the server's bounds."""
    elements = {name: math.prod(shape) for name, shape in shapes.items()}
    total = sum(elements.values())
    limit = model.manifest.max_input_elements if model.manifest else 0
    if limit and total > limit:
        raise _field(_biggest(shapes), f"the inputs hold {total:,} elements; {model.name} takes at "
                     f"most {limit:,} per request (send several smaller requests)")
    decoded = sum(count * _element_bytes(datatypes[name]) for name, count in elements.items())
    if decoded > max_bytes:
        raise _field(_biggest(shapes), f"the inputs decode to {decoded:,} bytes; the server's "
                     f"max_message_bytes is {max_bytes:,}")
    reply = Runtime.output_bytes(model, shapes)
    if reply is not None and reply > max_bytes:
        raise _field(_biggest(shapes), f"the outputs would take {reply:,} bytes; the server's "
                     f"max_message_bytes is {max_bytes:,}, so the reply could never be sent")


def wanted_outputs(request: pb.ModelInferRequest, names: Sequence[str]) -> list[str]:
    wanted = [o.name for o in request.outputs] or list(names)
    for i, name in enumerate(wanted):
        if name not in names:
            raise _field(f"outputs[{i}].name", f"model outputs are {list(names)}")
        if name in wanted[:i]:
            raise _field(f"outputs[{i}].name", f"output {name!r} is requested twice")
    for i, output in enumerate(request.outputs):
        if "classification" in output.parameters:  # an extension this server does not offer
            raise _field(f"outputs[{i}].parameters.classification",
                         "the classification extension is not supported: ask for the tensor and "
                         "rank it yourself")
    return wanted
