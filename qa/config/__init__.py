"""The run configuration every stage speaks: frozen dataclasses whose fields declare type, range,
default and help (``schema``), and the one validation pass over them (``validation``)."""
