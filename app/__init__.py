"""The Gradio studio. `app.demo.build_demo(model)` makes the Blocks; `app.settings` reads what `app.py` runs with;
`app.examples_dir()` is the example media shipped with the package.

Nothing heavy is imported here, so `python app.py --help` answers at once.
"""

from pathlib import Path

import sam2_model  # noqa: F401  (first: keeps ultralytics from installing packages)


def examples_dir() -> Path:
    """The example media shipped with the package, wherever it is installed (``app/examples/`` in a checkout):
    ``scene.jpg`` and ``scene_2.jpg`` (photos), ``video.mp4`` (24 frames, 480x320, 12 fps) and ``boxes/`` (their
    boxes as YOLO detection labels, for `auto_annotate(det_model=examples_dir() / "boxes")`). Read them in place;
    write elsewhere (an installed package's folder is no place for outputs)."""
    return Path(__file__).resolve().parent / "examples"
