"""The server's side of the effect contract, with one ONNX Runtime session as the runtime."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnxruntime as ort


class SessionContext:
    """Serves one model name from an ONNX Runtime session, as the server's runtime would."""

    def __init__(self, name: str, session: ort.InferenceSession) -> None:
        self.name, self.session, self.calls = name, session, 0

    def infer(self, model: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        assert model == self.name
        self.calls += 1
        return {"result": np.asarray(self.session.run(["result"], dict(inputs))[0])}

    @property
    def cancelled(self) -> bool:
        return False

    def check_cancelled(self) -> None:
        return None
