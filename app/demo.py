"""`build_demo`: the studio's Gradio Blocks on one shared SAM 2 model.

The Blocks only lay out components and wire events to `Studio`'s handlers. Every event that runs the model shares the
concurrency id "model"; UI-only events are private, and programs use the named endpoints /segment_image,
/track_video and /auto_annotate. In each tab the work surface (canvas, frame) is declared first, so on a phone, where
the columns stack, it comes before the controls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from gradio_image_annotation import image_annotator

from annotate.settings import DetectorSettings, VideoSettings
from sam2_model import Sam2Model

from . import gradio_fixes
from .detector_pool import DetectorPool
from .errors import guard
from .image_tab import MODES, POSITIVE, VIEW_SIZE
from .media import PALETTE
from .settings import Limits
from .studio import Studio
from .video_tab import MODES as VIDEO_MODES

EXAMPLES = Path(__file__).resolve().parent / "examples"  # shipped with the package

try:  # Hugging Face ZeroGPU Spaces: run the model handlers on a GPU; no effect anywhere else
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(function):
        return function


IMAGE_STEPS = """
1. Upload an image, or pick an example.
2. Click the object; a *Negative click* takes a part away. Or draw a box: *Box (drag)*, or *Box (two clicks)*.
3. One click gives three candidates under the image: pick the best.
4. *Add object* for the next one; click an object in the list to work on it again; name it for the exports.
5. *Export*, or *Segment everything* to start from SAM 2's own masks.
"""
VIDEO_STEPS = """
1. Upload a video, or click the example.
2. Move the slider to a frame where the object shows, and click it. *Add object* for more.
3. *Track*: watch the masks appear frame by frame. *Cancel* keeps what is tracked.
4. Scrub the slider to check any frame; click there to correct, then *Track* again.
5. Download the overlay video, the masks and COCO.
"""
ANNOTATE_STEPS = """
1. Upload images, videos, or zips of them.
2. Choose a detector and, if you like, the classes to keep.
3. *Annotate*: the detector's boxes become SAM 2 masks: a YOLO-seg and COCO dataset to train on. In videos the
   detector runs every few frames and SAM 2 tracks each object in between, with one id per object.
"""


def swatch_css(max_objects: int) -> str:
    """Each object's colour as a square before its entry in the object lists (object N has palette colour N-1)."""
    rules = [
        ".object-list label { align-items: center; }",
        ".object-list label::before { content: ''; width: 14px; height: 14px; border-radius: 3px; margin-right: 6px;"
        " flex: none; }",
    ]
    for index in range(max_objects):
        colour = PALETTE.by_idx(index).as_hex()
        rules.append(f".object-list label:nth-of-type({index + 1})::before {{ background: {colour}; }}")
    return "\n".join(rules)


TIMELINE_CSS = """
.timeline { display: flex; flex-direction: column; gap: 4px; padding: 4px 0; }
.tl-row { display: flex; align-items: center; gap: 8px; }
.tl-name { width: 3.5em; font-size: 0.85em; font-weight: 600; white-space: nowrap; }
.tl-bar { position: relative; flex: 1; height: 14px; background: var(--background-fill-secondary);
          border-radius: 3px; overflow: hidden; }
.tl-run { position: absolute; top: 3px; height: 8px; opacity: 0.8; border-radius: 2px; }
.tl-prompt { position: absolute; top: 1px; width: 8px; height: 8px; margin-left: -5px; transform: rotate(45deg);
             border: 2px solid; background: white; }
.tl-cursor { position: absolute; top: 0; bottom: 0; width: 2px; margin-left: -1px; background: #222; }
.banner-untrained { background: #fff3cd; color: #664d03; border: 1px solid #ffe69c; border-radius: 6px;
                    padding: 8px 12px; }
"""


def build_demo(model: Sam2Model, limits: Limits | None = None, detectors: DetectorPool | None = None) -> gr.Blocks:
    """The studio on `model` (loaded once by the caller and shared by every user); `detectors`: the pool the
    Auto-annotate tab borrows from (default: ultralytics' YOLO11 detectors, downloaded on first use).

    Every handler is wrapped by `errors.guard`: in the browser a refusal is a warning that leaves every panel as it
    was; the named API gets the error."""
    gradio_fixes.apply()  # pictures shown again are never rewritten while the browser fetches them
    studio = Studio(model, limits, detectors)
    limits = studio.limits
    image_tab, video_tab, annotate_tab, api = studio.image, studio.video, studio.annotate, studio.api
    model_events: dict[str, Any] = {"concurrency_id": "model", "concurrency_limit": limits.model_concurrency}
    private: dict[str, Any] = {"api_visibility": "private"}
    css = swatch_css(limits.max_objects) + TIMELINE_CSS
    # delete_cache: Gradio's copies of uploads and results older than an hour are removed every 30 minutes
    with gr.Blocks(title="SAM 2 studio", delete_cache=(1800, 3600)) as demo:
        demo.studio = studio  # for tests and embedding apps
        # the studio's styles travel with its Blocks (Gradio 6 takes css at launch, which embedders may not pass)
        gr.HTML(f"<style>{css}</style>", container=False, padding=False, elem_id="studio_styles")
        gr.Markdown(
            f"# SAM 2 studio\nSegment and track objects with clicks and boxes. Model: **{model.spec.label}** on "
            f"`{model.device.type}`.",
            elem_id="header",
        )
        if model.source == "untrained" or model.source.startswith("untrained"):
            gr.Markdown(
                "**Untrained model**: this server runs SAM 2 with random weights (a smoke test). Masks are "
                "meaningless; start it with a checkpoint for real ones.",
                elem_classes=["banner-untrained"],
                elem_id="untrained_banner",
            )

        with gr.Tab("Image"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=5, min_width=340):
                    canvas = gr.Image(label="Click to segment", type="numpy", format="png", interactive=False,
                                      elem_id="image_canvas", show_label=False)  # fmt: skip
                    box_canvas = image_annotator(
                        label="Drag a box", single_box=True, disable_edit_boxes=True, sources=[], visible=False,
                        show_clear_button=False, show_download_button=False, show_remove_button=False,
                        box_min_size=4, elem_id="image_box_canvas", show_label=False,
                    )  # fmt: skip
                    hint = gr.Markdown("Upload an image, or pick an example.", elem_id="image_hint")
                    candidates = gr.Gallery(
                        label="Candidates for the active object: pick the best", columns=3, height=270,
                        object_fit="contain", allow_preview=False, format="png", elem_id="image_candidates",
                    )  # fmt: skip
                with gr.Column(scale=3, min_width=300):
                    gr.Markdown(IMAGE_STEPS, elem_id="image_steps")
                    image_input = gr.File(  # a file, not gr.Image: see app.prompts / the guarded opener
                        label="Upload an image", file_types=["image"], type="filepath", elem_id="image_upload"
                    )
                    examples = sorted(str(p) for p in EXAMPLES.glob("*.jpg"))
                    if examples:  # picking one fills the upload, and its .change event loads it
                        gr.Examples(examples, image_input, label="Examples: click one", examples_per_page=4)
                    mode = gr.Radio(MODES, value=POSITIVE, label="A click on the image adds", elem_id="image_mode")
                    objects = gr.Radio(
                        [], label="Objects (click one to work on it)", elem_id="image_objects",
                        elem_classes=["object-list"],
                    )  # fmt: skip
                    class_name = gr.Textbox(label="Class of the active object (for the exports)",
                                            placeholder="object", elem_id="image_class")  # fmt: skip
                    with gr.Row():
                        add_object = gr.Button("Add object", elem_id="image_add_object")
                        undo = gr.Button("Undo", elem_id="image_undo")
                        remove = gr.Button("Remove object", elem_id="image_remove")
                        clear = gr.Button("Clear all", elem_id="image_clear")
                    everything = gr.Button("Segment everything", elem_id="image_everything")
                    export = gr.Button("Export masks, COCO and YOLO labels", variant="primary", elem_id="image_export")
                    exported = gr.File(label="Downloads", file_count="multiple", elem_id="image_downloads")
            view = [canvas, box_canvas, candidates, objects, hint, class_name]
            assert len(view) == VIEW_SIZE
            keep = {"keep": len(view)}
            image_input.change(gpu(guard(image_tab.upload, **keep)), image_input, view, **model_events, **private)
            mode.input(guard(image_tab.set_mode, keep=3), mode, [canvas, box_canvas, hint], **private)
            canvas.select(gpu(guard(image_tab.click, **keep)), mode, view, **model_events, **private)
            box_canvas.change(gpu(guard(image_tab.draw_box, **keep)), box_canvas, view, **model_events, **private)
            candidates.select(guard(image_tab.pick_candidate, **keep), None, view, **private)
            objects.input(guard(image_tab.select_object, **keep), objects, view, **private)
            class_name.submit(guard(image_tab.name_object, **keep), class_name, view, **private)
            class_name.blur(guard(image_tab.name_object, **keep), class_name, view, **private)
            add_object.click(guard(image_tab.add_object, **keep), None, view, **private)
            undo.click(gpu(guard(image_tab.undo, **keep)), None, view, **model_events, **private)
            remove.click(guard(image_tab.remove_object, **keep), None, view, **private)
            clear.click(guard(image_tab.clear, keep=len(view) + 1), None, [*view, exported], **private)
            everything.click(gpu(guard(image_tab.segment_everything, **keep)), None, view, **model_events, **private)
            export.click(guard(image_tab.export, keep=1), None, exported, **private)

        with gr.Tab("Video"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=5, min_width=340):
                    frame = gr.Image(label="Frame: click objects", type="numpy", format="png", interactive=False,
                                     elem_id="video_frame", show_label=False)  # fmt: skip
                    slider = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="frame_slider")
                    timeline = gr.HTML("", elem_id="video_timeline")
                    video_status = gr.Markdown("No video yet.", elem_id="video_status")
                    tracked_video = gr.Video(label="Tracked", elem_id="tracked_video", format="mp4")
                    video_files = gr.File(label="Masks (PNG zip) and COCO JSON", file_count="multiple",
                                          elem_id="video_files")  # fmt: skip
                with gr.Column(scale=3, min_width=300):
                    gr.Markdown(VIDEO_STEPS, elem_id="video_steps")
                    video_input = gr.Video(label="Upload a video (mp4, mov, webm)", elem_id="video_upload", height=200)
                    video_example = gr.Column()  # the example goes here, once the handler's outputs exist
                    video_mode = gr.Radio(VIDEO_MODES, value=POSITIVE, label="A click adds", elem_id="video_mode")
                    video_objects = gr.Radio(
                        [], label="Objects (click one to work on it)", elem_id="video_objects",
                        elem_classes=["object-list"],
                    )  # fmt: skip
                    with gr.Row():
                        video_add = gr.Button("Add object", elem_id="video_add_object")
                        video_undo = gr.Button("Undo", elem_id="video_undo")
                        video_remove = gr.Button("Remove object", elem_id="video_remove")
                    with gr.Row():
                        track = gr.Button("Track", variant="primary", elem_id="track")
                        cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
            video_view = [frame, slider, video_status, timeline, video_objects]
            video_keep = {"keep": len(video_view)}
            video_input.upload(gpu(guard(video_tab.upload, **video_keep)), video_input, video_view, **model_events,
                               **private)  # fmt: skip
            if (EXAMPLES / "video.mp4").exists():
                load_example = gpu(guard(video_tab.upload, **video_keep))
                with video_example:
                    gr.Examples([str(EXAMPLES / "video.mp4")], video_input, fn=load_example, outputs=video_view,
                                run_on_click=True, label="Example: click it")  # fmt: skip
            slider.input(guard(video_tab.show_frame, keep=2), slider, [frame, timeline], **private)
            frame.select(gpu(guard(video_tab.click, **video_keep)), [slider, video_mode], video_view, **model_events,
                         **private)  # fmt: skip
            video_objects.input(guard(video_tab.select_object, **video_keep), [video_objects, slider], video_view,
                                **private)  # fmt: skip
            video_add.click(guard(video_tab.add_object, **video_keep), slider, video_view, **private)
            video_undo.click(gpu(guard(video_tab.undo, **video_keep)), slider, video_view, **model_events, **private)
            video_remove.click(guard(video_tab.remove_object, **video_keep), slider, video_view, **private)
            track_outputs = [frame, slider, video_status, timeline, video_objects, tracked_video, video_files]
            track.click(gpu(guard(video_tab.track, keep=len(track_outputs))), None, track_outputs, **model_events,
                        show_progress="hidden", **private)  # fmt: skip
            # not in the model's concurrency group: it must run while Track holds a model slot
            cancel.click(guard(video_tab.cancel, keep=1), None, video_status, concurrency_limit=None, **private)

        with gr.Tab("Auto-annotate"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=5, min_width=340):
                    gallery = gr.Gallery(
                        label="Masks (the first images; each video's first, middle and last frame)", columns=3,
                        format="png", object_fit="contain", elem_id="annotate_gallery",
                    )  # fmt: skip
                    annotate_preview = gr.Video(
                        label="Tracked video (ids drawn)", elem_id="annotate_preview", interactive=False
                    )
                    dataset = gr.File(
                        label="Dataset (images, labels, data.yaml, COCO JSON; for videos: vis.json, tracks, previews)",
                        elem_id="annotate_dataset",
                    )
                with gr.Column(scale=3, min_width=300):
                    gr.Markdown(ANNOTATE_STEPS)
                    files = gr.File(label="Images, videos, or zips of them", file_count="multiple",
                                    elem_id="annotate_files")  # fmt: skip
                    names = studio.detectors.names
                    detector = gr.Dropdown(names, value=names[0], label="Detector (downloaded on first use)",
                                           elem_id="annotate_detector")  # fmt: skip
                    classes = gr.Dropdown(
                        list(studio.detectors.class_names(names[0]).values()), value=[], multiselect=True,
                        label="Classes to keep (none: all)", elem_id="annotate_classes",
                    )  # fmt: skip
                    conf = gr.Slider(0.0, 1.0, value=DetectorSettings.conf, step=0.01, label="Detector confidence")
                    keyframes = gr.Slider(
                        1, 30, value=VideoSettings.keyframe_interval, step=1, elem_id="annotate_keyframes",
                        label="Videos: detector every N frames (SAM 2 tracks in between)",
                    )  # fmt: skip
                    run = gr.Button("Annotate", variant="primary", elem_id="annotate_run")
            detector.input(guard(annotate_tab.class_names, keep=1), detector, classes, **private)
            run.click(gpu(guard(annotate_tab.run, keep=3)), [files, detector, classes, conf, keyframes],
                      [gallery, dataset, annotate_preview], **model_events, **private)  # fmt: skip

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
        api_segment.click(gpu(guard(api.segment_image)), [api_image, api_points, api_box],
                          [api_mask, api_overlay, api_scores], api_name="segment_image", **model_events)  # fmt: skip
        api_track.click(gpu(guard(api.track_video)), [api_video, api_prompts], [api_tracked, api_masks],
                        api_name="track_video", **model_events)  # fmt: skip
        api_annotate.click(gpu(guard(api.auto_annotate)), [api_files, api_detector, api_classes], api_dataset,
                           api_name="auto_annotate", **model_events)  # fmt: skip
        demo.load(guard(studio.open_session), None, None, **private)  # the only event that creates a user's session
        demo.unload(studio.close_session)
    return demo
