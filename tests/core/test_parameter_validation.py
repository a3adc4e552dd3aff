"""Parameters checked field by field before anything runs: what the caller gets back names the
field and says what was wrong, for any generator's or effect's model."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, Field

from museforge.engine.validation import validate_parameters


class Knobs(BaseModel):
    strength: float = Field(0.5, ge=0.0, le=2.0)
    maybe: Annotated[float, Field(ge=0.0)] | None = None
    name: str = "x"


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-Infinity", " +inf ", float("nan"), float("-inf")])
def test_a_non_finite_number_given_as_text_is_named_as_such(text: str | float) -> None:
    _, found = validate_parameters("test.knobs", Knobs, {"strength": text, "maybe": text})
    described = {v.field: v.description for v in found}
    assert described == {"parameters.strength": f"must be a finite number, got {text!r}",
                         "parameters.maybe": f"must be a finite number, got {text!r}"}


def test_numbers_as_text_and_words_that_look_like_numbers_elsewhere_still_pass() -> None:
    params, found = validate_parameters("test.knobs", Knobs, {"strength": "1.5", "name": "nan"})
    assert found == [] and params == Knobs(strength=1.5, name="nan")
