"""`build_demo`: the studio's Gradio Blocks on one shared SAM 2 model.

The Blocks only lay out components and wire events to `Studio`'s handlers. Every event that runs the model shares the
concurrency id "model"; UI-only events are private, and programs use the named endpoints /segment_image,
/track_video and /auto_annotate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from annotate.settings import DetectorSettings
from sam2_model import Sam2Model

from .detector_pool import DetectorPool
from .image_tab import BOX, NEGATIVE, POSITIVE
from .settings import Limits
from .studio import Studio

ASSETS = Path(__file__).resolve().parents[1] / "assets"

try:  # Hugging Face ZeroGPU Spaces: run the model handlers on a GPU; no effect anywhere else
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(function):
        return function


def build_demo(model: Sam2Model, limits: Limits | None = None, detectors: DetectorPool | None = None) -> gr.Blocks:
    """The studio on `model` (loaded once by the caller and shared by every user); `detectors`: the pool the
    Auto-annotate tab borrows from (default: ultralytics' YOLO11 detectors, downloaded on first use)."""
    studio = Studio(model, limits, detectors)
    limits = studio.limits
    image_tab, video_tab, annotate_tab, api = studio.image, studio.video, studio.annotate, studio.api
    model_events: dict[str, Any] = {"concurrency_id": "model", "concurrency_limit": limits.model_concurrency}
    private: dict[str, Any] = {"api_visibility": "private"}
    # delete_cache: Gradio's copies of uploads and results older than an hour are removed every 30 minutes
    with gr.Blocks(title="SAM 2 studio", delete_cache=(1800, 3600)) as demo:
        demo.studio = studio  # for tests and embedding apps
        gr.Markdown(
            f"# SAM 2 studio\nSegment and track with clicks and boxes. Model: **{model.spec.label}** on "
            f"`{model.device.type}`."
        )
        with gr.Tab("Image"):
            with gr.Row():
                with gr.Column(scale=3):
                    image_input = gr.Image(label="Upload an image", type="filepath", elem_id="image_upload", height=220)
                    examples = sorted(str(p) for p in ASSETS.glob("example_*.jpg"))
                    if examples:
                        gr.Examples(examples, image_input, label="Examples")
                    mode = gr.Radio([POSITIVE, NEGATIVE, BOX], value=POSITIVE, label="A click on the image adds")
                    with gr.Row():
                        new_object = gr.Button("New object")
                        undo = gr.Button("Undo")
                        remove = gr.Button("Remove object")
                        clear = gr.Button("Clear all")
                    active = gr.Number(label="Active object", value=1, precision=0, minimum=1)
                    objects = gr.Markdown("No image yet.", elem_id="image_objects")
                with gr.Column(scale=5):
                    canvas = gr.Image(label="Click to segment", type="numpy", format="png", interactive=False,
                                      elem_id="image_canvas")  # fmt: skip
                    candidates = gr.Gallery(label="Candidates (pick one)", columns=3, height=160, format="png")
                    export = gr.Button("Export masks, COCO and YOLO labels")
                    exported = gr.File(label="Downloads", file_count="multiple")
            view = [canvas, candidates, objects, active]
            image_input.upload(gpu(image_tab.upload), image_input, view, **model_events, **private)
            canvas.select(gpu(image_tab.click), mode, view, **model_events, **private)
            candidates.select(image_tab.pick_candidate, None, view, **private)
            new_object.click(image_tab.new_object, None, view, **private)
            active.submit(image_tab.select_object, active, view, **private)
            undo.click(gpu(image_tab.undo), None, view, **model_events, **private)
            remove.click(image_tab.remove_object, None, view, **private)
            clear.click(image_tab.clear, None, view, **private)
            export.click(image_tab.export, None, exported, **private)

        with gr.Tab("Video"):
            with gr.Row():
                with gr.Column(scale=3):
                    video_input = gr.Video(label="Upload a video (mp4, mov, webm)", elem_id="video_upload", height=220)
                    video_mode = gr.Radio([POSITIVE, NEGATIVE], value=POSITIVE, label="A click adds")
                    video_object = gr.Number(label="Object id for clicks", value=1, precision=0, minimum=1)
                    with gr.Row():
                        track = gr.Button("Track", variant="primary", elem_id="track")
                        video_remove = gr.Button("Remove object")
                    video_status = gr.Markdown("No video yet.", elem_id="video_status")
                with gr.Column(scale=5):
                    frame = gr.Image(label="Frame: click objects", type="numpy", format="png", interactive=False,
                                     elem_id="video_frame")  # fmt: skip
                    slider = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="frame_slider")
                    tracked_video = gr.Video(label="Tracked", elem_id="tracked_video", format="mp4")
                    video_files = gr.File(label="Masks (PNG zip) and COCO JSON", file_count="multiple")
            video_input.upload(gpu(video_tab.upload), video_input, [frame, slider, video_status], **model_events,
                               **private)  # fmt: skip
            slider.release(video_tab.show_frame, slider, frame, **private)
            video_object.submit(video_tab.set_object, video_object, video_status, **private)
            frame.select(gpu(video_tab.click), [slider, video_mode], [frame, video_status], **model_events,
                         **private)  # fmt: skip
            track.click(gpu(video_tab.track), None, [frame, tracked_video, video_files], **model_events, **private)
            video_remove.click(video_tab.remove_object, None, [frame, video_status], **private)

        with gr.Tab("Auto-annotate"):
            with gr.Row():
                with gr.Column():
                    files = gr.File(label="Images, or a zip of images", file_count="multiple", elem_id="annotate_files")
                    detector = gr.Dropdown(
                        studio.detectors.names,
                        value=studio.detectors.names[0],
                        label="Detector (downloaded on first use)",
                    )
                    classes = gr.Textbox(label="Class ids to keep (comma-separated; empty keeps all)", value="")
                    conf = gr.Slider(0.0, 1.0, value=DetectorSettings.conf, step=0.01, label="Detector confidence")
                    run = gr.Button("Annotate", variant="primary")
                with gr.Column():
                    gallery = gr.Gallery(label="Masks", columns=3, format="png")
                    dataset = gr.File(label="Dataset (images, labels, data.yaml, COCO JSON)")
            run.click(gpu(annotate_tab.run), [files, detector, classes, conf], [gallery, dataset], **model_events,
                      **private)  # fmt: skip

        with gr.Row(visible=False):  # named API for programs (gradio_client)
            api_image = gr.Image(type="filepath")
            api_points = gr.Textbox()
            api_box = gr.Textbox()
            api_mask = gr.Image(type="numpy", format="png", image_mode="L")
            api_overlay = gr.Image(type="numpy", format="png")
            api_scores = gr.JSON()
            api_video = gr.File(type="filepath")
            api_prompts = gr.Textbox()
            api_tracked = gr.File()
            api_masks = gr.File()
            api_files = gr.File(file_count="multiple")
            api_detector = gr.Textbox()
            api_classes = gr.Textbox()
            api_dataset = gr.File()
            api_segment, api_track, api_annotate = gr.Button(), gr.Button(), gr.Button()
        api_segment.click(gpu(api.segment_image), [api_image, api_points, api_box],
                          [api_mask, api_overlay, api_scores], api_name="segment_image", **model_events)  # fmt: skip
        api_track.click(gpu(api.track_video), [api_video, api_prompts], [api_tracked, api_masks],
                        api_name="track_video", **model_events)  # fmt: skip
        api_annotate.click(gpu(api.auto_annotate), [api_files, api_detector, api_classes], api_dataset,
                           api_name="auto_annotate", **model_events)  # fmt: skip
        demo.unload(studio.close_session)
    return demo
