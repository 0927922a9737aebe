"""Networks (PyTorch, ``train`` extra). Inference never imports this package: it runs the ONNX export."""

from .registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
