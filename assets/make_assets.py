"""Make the app's example media, `app/examples/` (drawn by us, no third-party content): `python assets/make_assets.py`."""

from __future__ import annotations

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


def main() -> None:
    cv2.imwrite(str(EXAMPLES / "scene.jpg"), scene(640, 426)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])
    cv2.imwrite(
        str(EXAMPLES / "scene_2.jpg"), scene(512, 384, t=0.8, seed=3)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88]
    )
    with av.open(str(EXAMPLES / "video.mp4"), mode="w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 480, 320, "yuv420p"
        stream.options = {"crf": "28", "preset": "veryslow"}
        for i in range(24):
            frame = av.VideoFrame.from_ndarray(scene(480, 320, t=i / 23), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


if __name__ == "__main__":
    main()
