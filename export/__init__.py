"""museforge.export: the training and PyTorch -> ONNX path (needs the ``[train]`` extra).

Nothing on the serving path imports this package. The training kit every recipe uses:
``fit`` (the loop: progress, checkpoints, resume; one-model ``fit``), ``schedule``
(warm-up + cosine), ``gan`` (the adversarial pair, EMA, epoch batches, hinge loss),
``seeds`` (seeding, the run's random streams), ``callbacks`` (progress and checkpoint
types); ``spec`` declares a model's inputs and outputs (and how validation draws them),
``datasets`` the generic data-set machinery, ``pipeline`` runs a recipe end to end;
``derived`` writes a version made from a shipped one, ``half_storage`` stores its weights as float16.
Only ``spec`` is imported here, so importing the package does not import torch.
"""

from __future__ import annotations

from .spec import ExportSpec, TensorSpec

__all__ = ["ExportSpec", "TensorSpec"]
