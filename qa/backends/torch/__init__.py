"""The torch backend (CPU, CUDA, torchrun): ``backend.py``, its batching, devices and launcher."""

from qa.backends.torch.backend import TorchBackend

__all__ = ["TorchBackend"]
