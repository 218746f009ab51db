"""The torch backend (CPU, CUDA, torchrun): ``backend.py``, its batching, devices and launcher."""


__all__ = ["TorchBackend"]


def __getattr__(name: str) -> object:
    # Lazy, so that importing this backend's settings (``options``) from the config layer
    # does not import the backend itself (torch, and the launchers).
    if name == "TorchBackend":
        from qa.backends.torch.backend import TorchBackend

        return TorchBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
