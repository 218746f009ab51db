"""The Graphcore IPU backend (optimum-graphcore): ``backend.py``, IPU configs and their files.

Importing it needs neither poptorch nor optimum-graphcore; they are imported when a run starts.
"""


__all__ = ["IPUBackend"]


def __getattr__(name: str) -> object:
    # Lazy, so that importing this backend's settings (``options``) from the config layer
    # does not import the backend itself (torch, and the launchers).
    if name == "IPUBackend":
        from qa.backends.ipu.backend import IPUBackend

        return IPUBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
