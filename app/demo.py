"""`build_demo`: the Gradio Blocks app on one shared SAM 2 model.

Handlers are plain functions of their inputs (importable and testable); the Blocks only wire them.
"""

from __future__ import annotations

import cv2
import gradio as gr
import numpy as np
import supervision as sv

from sam2_model import ImagePredictor, Sam2Model

POSITIVE, NEGATIVE = "Positive click", "Negative click"
_MASK_ANNOTATOR = sv.MaskAnnotator(color=sv.Color.from_hex("#1E90FF"), opacity=0.5, color_lookup=sv.ColorLookup.INDEX)


def segment_points(model: Sam2Model, image: np.ndarray, points: list[list[int]]) -> tuple[np.ndarray, float | None]:
    """Mask for clicks on an image.

    Args:
        image: HxWx3 uint8 RGB.
        points: [[x, y, label], ...] in image pixels; label 1 positive, 0 negative.

    Returns:
        The overlay (HxWx3 uint8 RGB: mask and clicks drawn on the original pixels) and the mask's predicted IoU
        (None when there are no clicks).
    """
    overlay = image.copy()
    if not points:
        return overlay, None
    predictor = ImagePredictor(model)
    predictor.set_image(image)  # cached after the first click on this image
    coords = np.array([p[:2] for p in points], dtype=np.float32)
    labels = np.array([p[2] for p in points], dtype=np.int32)
    masks, scores, _ = predictor.predict(coords, labels, multimask_output=len(points) == 1)
    best = int(np.argmax(scores))
    mask = masks[best].astype(bool)
    detections = sv.Detections(xyxy=sv.mask_to_xyxy(mask[None]), mask=mask[None])
    overlay = _MASK_ANNOTATOR.annotate(overlay, detections)
    for x, y, label in points:
        color = (0, 200, 0) if label == 1 else (220, 0, 0)
        cv2.circle(overlay, (int(x), int(y)), 6, color, -1, lineType=cv2.LINE_AA)
        cv2.circle(overlay, (int(x), int(y)), 6, (255, 255, 255), 1, lineType=cv2.LINE_AA)
    return overlay, float(scores[best])


def build_demo(model: Sam2Model) -> gr.Blocks:
    """The studio's Blocks on `model` (loaded once by the caller and shared by every user)."""
    with gr.Blocks(title="SAM 2 studio") as demo:
        gr.Markdown(f"# SAM 2 studio\nModel: **{model.spec.label}** on `{model.device}` ({model.source})")
        points = gr.State([])
        with gr.Row():
            with gr.Column():
                image = gr.Image(label="Image: click to segment", type="numpy", elem_id="input_image")
                mode = gr.Radio([POSITIVE, NEGATIVE], value=POSITIVE, label="Click adds")
                clear = gr.Button("Clear clicks")
            with gr.Column():
                overlay = gr.Image(label="Mask", type="numpy", format="png", interactive=False, elem_id="overlay")
                score = gr.Number(label="Predicted IoU", interactive=False)

        def on_click(img, pts, click_mode, evt: gr.SelectData):
            if img is None:
                raise gr.Error("Upload an image first.")
            x, y = evt.index
            pts = [*pts, [int(x), int(y), 1 if click_mode == POSITIVE else 0]]
            result, best = segment_points(model, img, pts)
            return pts, result, best

        # UI-only events stay private: programs get named endpoints instead (gradio_client cannot send clicks)
        image.select(
            on_click, [image, points, mode], [points, overlay, score], concurrency_id="model", api_visibility="private"
        )
        image.upload(lambda: ([], None, None), None, [points, overlay, score], api_visibility="private")
        clear.click(lambda img: ([], img, None), image, [points, overlay, score], api_visibility="private")
    return demo
