"""museforge.export: the training and PyTorch -> ONNX path (needs the ``[train]`` extra).

Nothing on the serving path imports this package.
"""

from __future__ import annotations

from .spec import ExportSpec, TensorSpec

__all__ = ["ExportSpec", "TensorSpec"]
