"""museforge benchmark: ``python -m bench`` prints one side-by-side table for every shipped model.

Rows compare PyTorch eager, raw ONNX Runtime (the limit), museforge over gRPC (tiny OIP
requests, compute-heavy ``Generate``) and a naive gRPC peer, all measured in one run on
this machine. See ``bench/__main__.py`` for the flags.
"""
