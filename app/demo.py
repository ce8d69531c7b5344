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
from .errors import guard
from .image_tab import BOX, NEGATIVE, POSITIVE
from .settings import Limits
from .studio import Studio

EXAMPLES = Path(__file__).resolve().parent / "examples"  # shipped with the package

try:  # Hugging Face ZeroGPU Spaces: run the model handlers on a GPU; no effect anywhere else
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(function):
        return function


def build_demo(model: Sam2Model, limits: Limits | None = None, detectors: DetectorPool | None = None) -> gr.Blocks:
    """The studio on `model` (loaded once by the caller and shared by every user); `detectors`: the pool the
    Auto-annotate tab borrows from (default: ultralytics' YOLO11 detectors, downloaded on first use).

    Every handler is wrapped by `errors.guard`: a refusal is a message for the user, never Gradio's generic error."""
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
                    # a file, not gr.Image: gr.Image decodes (and converts non-RGB) uploads before our handler can check
                    # their size, and refuses unreadable files with Gradio's generic error instead of a message
                    image_input = gr.File(
                        label="Upload an image", file_types=["image"], type="filepath", elem_id="image_upload"
                    )
                    examples = sorted(str(p) for p in EXAMPLES.glob("*.jpg"))
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
                    canvas = gr.Image(
                        label="Click to segment", type="numpy", format="png", interactive=False, elem_id="image_canvas"
                    )
                    candidates = gr.Gallery(label="Candidates (pick one)", columns=3, height=160, format="png")
                    export = gr.Button("Export masks, COCO and YOLO labels")
                    exported = gr.File(label="Downloads", file_count="multiple")
            view = [canvas, candidates, objects, active]
            image_input.upload(gpu(guard(image_tab.upload)), image_input, view, **model_events, **private)
            canvas.select(gpu(guard(image_tab.click)), mode, view, **model_events, **private)
            candidates.select(guard(image_tab.pick_candidate), None, view, **private)
            new_object.click(guard(image_tab.new_object), None, view, **private)
            active.submit(guard(image_tab.select_object), active, view, **private)
            undo.click(gpu(guard(image_tab.undo)), None, view, **model_events, **private)
            remove.click(guard(image_tab.remove_object), None, view, **private)
            clear.click(guard(image_tab.clear), None, view, **private)
            export.click(guard(image_tab.export), None, exported, **private)

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
                    frame = gr.Image(
                        label="Frame: click objects",
                        type="numpy",
                        format="png",
                        interactive=False,
                        elem_id="video_frame",
                    )
                    slider = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="frame_slider")
                    tracked_video = gr.Video(label="Tracked", elem_id="tracked_video", format="mp4")
                    video_files = gr.File(label="Masks (PNG zip) and COCO JSON", file_count="multiple")
            video_input.upload(
                gpu(guard(video_tab.upload)), video_input, [frame, slider, video_status], **model_events, **private
            )
            slider.release(guard(video_tab.show_frame), slider, frame, **private)
            video_object.submit(guard(video_tab.set_object), video_object, video_status, **private)
            frame.select(
                gpu(guard(video_tab.click)), [slider, video_mode], [frame, video_status], **model_events, **private
            )
            track.click(
                gpu(guard(video_tab.track)), None, [frame, tracked_video, video_files], **model_events, **private
            )
            video_remove.click(guard(video_tab.remove_object), None, [frame, video_status], **private)

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
            run.click(
                gpu(guard(annotate_tab.run)),
                [files, detector, classes, conf],
                [gallery, dataset],
                **model_events,
                **private,
            )

        with gr.Row(visible=False):  # named API for programs (gradio_client)
            api_image = gr.File(type="filepath")  # a file, read by our guarded opener (see image_input)
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
        api_segment.click(
            gpu(guard(api.segment_image)),
            [api_image, api_points, api_box],
            [api_mask, api_overlay, api_scores],
            api_name="segment_image",
            **model_events,
        )
        api_track.click(
            gpu(guard(api.track_video)),
            [api_video, api_prompts],
            [api_tracked, api_masks],
            api_name="track_video",
            **model_events,
        )
        api_annotate.click(
            gpu(guard(api.auto_annotate)),
            [api_files, api_detector, api_classes],
            api_dataset,
            api_name="auto_annotate",
            **model_events,
        )
        demo.load(guard(studio.open_session), None, None, **private)  # the only event that creates a user's session
        demo.unload(studio.close_session)
    return demo
