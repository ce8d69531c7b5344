"""A fix for one Gradio behaviour that breaks pictures in the browser; applied once by `build_demo`.

Gradio saves a picture a handler returns (numpy or PIL, for gr.Image, gr.Gallery, the box annotator) under a folder
named by the hash of its bytes, and rewrites that file in place every time the same picture is returned again
(`processing_utils.save_pil_to_cache`: `Path.write_bytes`, which truncates first). Our panels return the same picture
often (adding an object, a click that changes nothing, a gallery redrawn), so the browser may be fetching a file while
the next response truncates it: the response ends short ("Too little data for declared Content-Length") and the panel
shows a broken picture. Gradio's own copy of files (`save_file_to_cache`) already does it right: skip a file that is
there, else write under a temporary name and rename. This makes the picture writer do the same.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gradio import processing_utils
from PIL import Image


def save_picture_atomically(img: Image.Image, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """Gradio's picture writer, made safe for pictures being served: the same bytes are never rewritten, a new file
    appears whole (rename), and a format PIL cannot write raises KeyError/ValueError as Gradio's does."""
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    if path.exists():
        os.utime(path)  # Gradio's delete_cache ages files by time: a picture handed out again is young again
        return str(path)
    fd, staging = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return str(path)


def apply() -> None:
    """Route Gradio's picture writer through `save_picture_atomically` (idempotent). Every caller in Gradio looks the
    writer up on `processing_utils` at call time, including `save_img_array_to_cache`, so one assignment covers them."""
    processing_utils.save_pil_to_cache = save_picture_atomically
