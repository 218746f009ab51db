"""The Graphcore IPU backend (optimum-graphcore): ``backend.py``, IPU configs and their files.

Importing it needs neither poptorch nor optimum-graphcore; they are imported when a run starts.
"""

from qa.backends.ipu.backend import IPUBackend

__all__ = ["IPUBackend"]
