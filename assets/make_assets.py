"""Make the app's example media, `app/examples/` (drawn by us, no third-party content): `python assets/make_assets.py`.

Besides the pictures and the video, `app/examples/boxes/` holds their objects' boxes as YOLO detection labels (one
file per photo and per video frame, `classes.txt` naming the classes): boxes you already have, for the offline recipe
(`auto_annotate(examples_dir(), det_model=examples_dir() / "boxes")`). `python assets/make_assets.py --boxes`
writes the boxes alone (the media's bytes stay as they are).
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import cv2
import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "examples"


def scene(width: int, height: int, t: float = 0.0, seed: int = 0) -> np.ndarray:
    """A sunny toy scene (RGB): sky gradient, grass, a ball, a crate and a tree; `t` moves the ball and the crate."""
    rng = np.random.default_rng(seed)
    yy = np.linspace(0, 1, height)[:, None]
    image = np.zeros((height, width, 3), np.float32)
    image[:] = (1 - yy)[..., None] * np.array([110, 170, 240]) + yy[..., None] * np.array([200, 225, 250])
    horizon = int(height * 0.62)
    image[horizon:] = np.array([70, 150, 60]) + rng.normal(0, 8, (height - horizon, width, 1))
    image = image.clip(0, 255).astype(np.uint8)
    # tree
    trunk_x = int(width * 0.8)
    cv2.rectangle(image, (trunk_x - 10, horizon - 90), (trunk_x + 10, horizon + 10), (110, 70, 40), -1)
    cv2.circle(image, (trunk_x, horizon - 110), 55, (40, 120, 45), -1, cv2.LINE_AA)
    # crate
    cx = int(width * (0.15 + 0.25 * t))
    cv2.rectangle(image, (cx, horizon - 40), (cx + 110, horizon + 45), (170, 120, 60), -1)
    cv2.rectangle(image, (cx, horizon - 40), (cx + 110, horizon + 45), (110, 70, 30), 4)
    cv2.line(image, (cx, horizon - 40), (cx + 110, horizon + 45), (110, 70, 30), 4)
    # ball with shading
    bx, by, r = int(width * (0.55 - 0.2 * t)), int(horizon + 30 - 60 * abs(np.sin(np.pi * t * 2))), 38
    for k in range(r, 0, -2):
        shade = 1.0 - 0.45 * (k / r)
        cv2.circle(image, (bx - (r - k) // 3, by - (r - k) // 3), k, (int(230 * shade + 25), 40, 50), -1, cv2.LINE_AA)
    return image


CLASSES = ("ball", "crate", "tree")
VIDEO_FRAMES = 24


def scene_boxes(width: int, height: int, t: float = 0.0) -> list[tuple[int, list[int]]]:
    """The (class id, xyxy box in pixels) of each object `scene` draws with these arguments: a ball, a crate, a tree."""
    horizon = int(height * 0.62)
    trunk_x = int(width * 0.8)
    cx = int(width * (0.15 + 0.25 * t))
    bx, by, r = int(width * (0.55 - 0.2 * t)), int(horizon + 30 - 60 * abs(np.sin(np.pi * t * 2))), 38
    return [
        (0, [bx - r, by - r, bx + r + 1, by + r + 1]),
        (1, [cx - 2, horizon - 42, cx + 113, horizon + 48]),  # the outline is 4 pixels wide
        (2, [trunk_x - 55, horizon - 165, trunk_x + 56, horizon + 11]),  # canopy and trunk
    ]


def yolo_label(boxes: list[tuple[int, list[int]]], width: int, height: int) -> str:
    """YOLO detection label lines (class cx cy w h, normalised) of pixel xyxy boxes."""
    lines = []
    for class_id, (x1, y1, x2, y2) in boxes:
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
        cx, cy, w, h = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
        lines.append(f"{class_id} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
    return "".join(lines)


def write_boxes() -> None:
    """`app/examples/boxes/`: the photos' and every video frame's boxes, and classes.txt."""
    folder = EXAMPLES / "boxes"
    (folder / "video").mkdir(parents=True, exist_ok=True)
    (folder / "classes.txt").write_text("".join(f"{name}\n" for name in CLASSES))
    (folder / "scene.txt").write_text(yolo_label(scene_boxes(640, 426), 640, 426))
    (folder / "scene_2.txt").write_text(yolo_label(scene_boxes(512, 384, t=0.8), 512, 384))
    for i in range(VIDEO_FRAMES):
        boxes = scene_boxes(480, 320, t=i / (VIDEO_FRAMES - 1))
        (folder / "video" / f"{i:06d}.txt").write_text(yolo_label(boxes, 480, 320))


def main() -> None:
    write_boxes()
    if "--boxes" in sys.argv[1:]:
        return
    cv2.imwrite(str(EXAMPLES / "scene.jpg"), scene(640, 426)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
    cv2.imwrite(
        str(EXAMPLES / "scene_2.jpg"), scene(512, 384, t=0.8, seed=3)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88]
    )
    with av.open(str(EXAMPLES / "video.mp4"), mode="w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 480, 320, "yuv420p"
        stream.options = {"crf": "28", "preset": "veryslow"}
        for i in range(VIDEO_FRAMES):
            frame = av.VideoFrame.from_ndarray(scene(480, 320, t=i / (VIDEO_FRAMES - 1)), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


if __name__ == "__main__":
    main()
