"""Dataset exporters: one module per output format, each a subclass of `Exporter` that registers itself.

`auto_annotate` (both backends) and the app's downloads write through the same exporters. A new format is one more
module in this package: subclass `Exporter`, set `format`, and it is found by `exporter_class(name)` and offered
by `formats()`.
"""

from __future__ import annotations

import importlib
import pkgutil

from . import yolo  # noqa: F401  (registered first: the format every dataset has)
from .base import EXPORTERS, Exporter, ImageEntry, Instance

# Import every module of the package once, so that each format's Exporter subclass registers itself.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def formats() -> tuple[str, ...]:
    """The names of every export format, in registration order ("yolo" first)."""
    return tuple(EXPORTERS)


def exporter_class(name: str) -> type[Exporter]:
    """The exporter of a format name; ValueError naming the known formats when it is unknown."""
    try:
        return EXPORTERS[name]
    except KeyError:
        raise ValueError(f"Unknown output format {name!r}: choose from {', '.join(EXPORTERS)}.") from None


__all__ = ["Exporter", "ImageEntry", "Instance", "exporter_class", "formats"]
