"""`DetectorPool`: the app's YOLO detectors, loaded once per name and lent to one request at a time.

ultralytics documents that a YOLO instance is not thread safe: each predict call writes its own settings (conf,
classes) into the instance's predictor. So a request borrows an instance for its whole run, and two requests at once
get two instances: copies of one loaded template (same weights; the file is read, or downloaded, once).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any


def load_yolo(name: str) -> Any:
    from annotate.detectors import load_yolo as load

    return load(name)


class DetectorPool:
    """Detectors by name. `names`: the ones users may pick; `loader`: builds one from its name (default:
    ultralytics' YOLO, downloaded on first use); at most `max_per_name` instances of a name are lent at once, and a
    request beyond that waits for one to come back. `text_embeddings`: for open-vocabulary detectors (YOLOE,
    YOLO-World), a file of names' text embeddings (`annotate.detectors.save_text_embeddings`) used instead of their
    text encoder, which a machine offline cannot download."""

    def __init__(
        self,
        names: Sequence[str],
        loader: Callable[[str], Any] = load_yolo,
        max_per_name: int = 2,
        text_embeddings: str | Path | None = None,
    ) -> None:
        self.names = list(names)
        self.text_embeddings = None if text_embeddings is None else Path(text_embeddings)
        self.loader = loader
        self.max_per_name = max_per_name
        self._templates: dict[str, Any] = {}
        self._free: dict[str, list[Any]] = {}
        self._lent: dict[str, int] = {}
        self._changed = threading.Condition()
        self._loading = threading.Lock()

    @contextlib.contextmanager
    def borrow(self, name: str) -> Iterator[Any]:
        """A detector of `name` for this request alone. ValueError for a name not in `names`; the loader's
        ConnectionError when it cannot be downloaded."""
        if name not in self.names:
            raise ValueError(f"Unknown detector {name!r}; choose one of {', '.join(self.names)}.")
        template = self._template(name)
        with self._changed:
            while self._lent.get(name, 0) >= self.max_per_name:
                self._changed.wait()
            self._lent[name] = self._lent.get(name, 0) + 1
            free = self._free.setdefault(name, [])
            detector = free.pop() if free else None
        try:
            if detector is None:
                detector = _clone(template)
            yield detector
        finally:
            with self._changed:
                self._lent[name] -= 1
                if detector is not None:
                    self._free[name].append(detector)
                self._changed.notify()

    def class_names(self, name: str) -> dict[int, str]:
        """The classes a detector finds, by id, known before it is downloaded: every detector the studio offers is
        a YOLO11 trained on COCO (`names` are ultralytics' asset names)."""
        if name not in self.names:
            raise ValueError(f"Unknown detector {name!r}; choose one of {', '.join(self.names)}.")
        return coco_class_names()

    def _template(self, name: str) -> Any:
        with self._loading:  # one load (or download) per name, even when several requests ask at once
            if name not in self._templates:
                self._templates[name] = self.loader(name)
            return self._templates[name]


def _clone(model: Any) -> Any:
    """A copy with the same weights. An ultralytics model's predictor (settings of its last call, a lock) stays
    behind: the copy builds its own on first use. The template is never lent, so nothing changes it meanwhile."""
    predictor = getattr(model, "predictor", None)
    if predictor is None:
        return copy.deepcopy(model)
    model.predictor = None
    try:
        return copy.deepcopy(model)
    finally:
        model.predictor = predictor


@functools.cache
def coco_class_names() -> dict[int, str]:
    """COCO's 80 class names by id, from the dataset file ultralytics ships (no download)."""
    import yaml
    from ultralytics.utils import ROOT

    names = yaml.safe_load((ROOT / "cfg" / "datasets" / "coco.yaml").read_text())["names"]
    return {int(k): str(v) for k, v in names.items()}
