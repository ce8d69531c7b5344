"""`build_demo`: the studio's Gradio Blocks on one shared SAM 2 model.

Each tab lays out and wires its own section (`ImageTab.build`, `VideoTab.build`, `AnnotateTab.build`); this module
adds the header, the styles, the named API (/segment_image, /find, /track_video, /auto_annotate) and the session
events. Every event that runs the model shares the concurrency id "model"; UI-only events are private.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from sam2_model import Sam2Model

from . import fair_queue, gradio_fixes
from .clients import TrustedProxies
from .detector_pool import DetectorPool
from .errors import guard
from .gpu import GpuRunner
from .media import PALETTE
from .review_tab import KEYBOARD_JS
from .settings import Limits
from .studio import EXAMPLES, Studio

__all__ = ["EXAMPLES", "build_demo"]


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


STUDIO_CSS = """
/* one grid for every row: the bars start after the widest name, so frames line up from row to row */
.timeline { display: grid; grid-template-columns: minmax(3.5em, max-content) 1fr; gap: 4px 8px; padding: 4px 0;
            align-items: center; }
.tl-row { display: contents; }
.tl-name { font-size: 0.85em; font-weight: 600; white-space: nowrap; }
.tl-bar { position: relative; height: 14px; background: var(--background-fill-secondary);
          border-radius: 3px; overflow: hidden; }
.tl-run { position: absolute; top: 3px; height: 8px; opacity: 0.8; border-radius: 2px; }
.tl-prompt { position: absolute; top: 1px; width: 8px; height: 8px; margin-left: -5px; transform: rotate(45deg);
             border: 2px solid; background: white; }
.tl-cursor { position: absolute; top: 0; bottom: 0; width: 2px; margin-left: -1px; background: #222; }
.banner-untrained { background: #fff3cd; color: #664d03; border: 1px solid #ffe69c; border-radius: 6px;
                    padding: 8px 12px; }
.toolbar { gap: 6px; }
/* output panels take no room until they have something to show */
.hide-when-empty:not(:has(img, video, a, .progress-text, .eta-bar)) { display: none !important; }
/* the box tool's rotate buttons rotate nothing we keep */
#image_box_canvas button[aria-label^="Rotate"], #review_box_canvas button[aria-label^="Rotate"] { display: none; }
"""


def build_demo(
    model: Sam2Model,
    limits: Limits | None = None,
    detectors: DetectorPool | None = None,
    proxies: TrustedProxies | None = None,
    runner: GpuRunner | None = None,
    finders: DetectorPool | None = None,
    dataset: str | Path | None = None,
) -> gr.Blocks:
    """The studio on `model` (loaded once by the caller and shared by every user); `detectors`: the pool the
    Auto-annotate tab borrows from (default: ultralytics' YOLO11 detectors, downloaded on first use); `proxies`:
    whose X-Forwarded-For names the client that per-client limits count (default: no one's); `runner`: how the
    GPU tasks run (default: ZeroGPU's `spaces.GPU` when the package is installed, see `gpu.default_runner`);
    `finders`: the open-vocabulary detectors Find borrows (default: YOLOE and YOLO-World, downloaded on first use);
    `dataset`: what the Review tab opens and saves in place (`sam2-studio --dataset PATH`; default: uploads only).
    Handlers run in this process, which owns every session; only the GPU tasks they call may run elsewhere.

    Every handler is wrapped by `errors.guard`: in the browser a refusal is a warning that leaves every panel as it
    was; the named API gets the error."""
    gradio_fixes.apply()  # pictures shown again are never rewritten while the browser fetches them
    fair_queue.install()  # each client's share of the queue, checked before a request takes a slot
    studio = Studio(model, limits, detectors, proxies, runner, finders, dataset)
    limits = studio.limits
    model_events: dict[str, Any] = {"concurrency_id": "model", "concurrency_limit": limits.model_concurrency}
    css = swatch_css(limits.max_objects) + STUDIO_CSS
    # delete_cache: Gradio's copies of uploads and results older than an hour are removed every 30 minutes
    with gr.Blocks(title="SAM 2 studio", delete_cache=(1800, 3600)) as demo:
        demo.studio = studio  # for tests and embedding apps
        demo.client_gate = fair_queue.ClientGate(limits, studio.proxies, model_events["concurrency_id"])
        # the studio's styles travel with its Blocks (Gradio 6 takes css at launch, which embedders may not pass)
        gr.HTML(f"<style>{css}</style>", container=False, padding=False, elem_id="studio_styles")
        gr.Markdown(
            f"# SAM 2 studio\nSegment and track objects with clicks and boxes. Model: **{model.spec.label}** on "
            f"`{model.device.type}`.",
            elem_id="header",
        )
        if model.source.startswith("untrained"):
            gr.Markdown(
                "**Untrained model**: this server runs SAM 2 with random weights (a smoke test). Masks are "
                "meaningless; start it with a checkpoint for real ones.",
                elem_classes=["banner-untrained"],
                elem_id="untrained_banner",
            )
        with gr.Tab("Image"):
            studio.image.build(model_events)
        with gr.Tab("Video"):
            studio.video.build(model_events)
        with gr.Tab("Auto-annotate"):
            studio.annotate.build(model_events)
        with gr.Tab("Review"):
            panels = studio.review.build(model_events)
            studio.review_videos.build(panels, studio.review.opened, model_events)
        named_api(studio, model_events)

        # Gradio passes the request to a parameter annotated gr.Request: Services takes any caller, so these wrap it
        def open_session(request: gr.Request) -> None:
            studio.open_session(request)

        def close_session(request: gr.Request) -> None:
            studio.close_session(request)

        demo.load(guard(open_session), None, None, api_visibility="private")  # the only event that opens a session
        demo.unload(close_session)
        demo.load(None, None, None, js=KEYBOARD_JS)  # the Review tab's keys
    return demo


def named_api(studio: Studio, model_events: dict[str, Any]) -> None:
    """The named endpoints for programs (gradio_client), on hidden components: /segment_image, /find, /track_video,
    /auto_annotate. Errors reach the caller as errors (no `keep`)."""
    api = studio.api
    with gr.Row(visible=False):
        image = gr.File(type="filepath")  # a file, read by our guarded opener (see services.open_image)
        points, box = gr.Textbox(), gr.Textbox()
        mask, overlay = gr.Image(type="numpy", format="png", image_mode="L"), gr.Image(type="numpy", format="png")
        scores = gr.JSON()
        video, prompts = gr.File(type="filepath"), gr.Textbox()
        tracked, masks = gr.File(), gr.File()
        files, detector, classes, dataset = gr.File(file_count="multiple"), gr.Textbox(), gr.Textbox(), gr.File()
        segment, track, annotate = gr.Button(), gr.Button(), gr.Button()
        phrases, finder, confidence, found, find = gr.Textbox(), gr.Textbox(), gr.Number(), gr.JSON(), gr.Button()
    segment.click(guard(api.segment_image), [image, points, box], [mask, overlay, scores],
                  api_name="segment_image", **model_events)  # fmt: skip
    find.click(guard(api.find), [image, phrases, box, finder, confidence], [overlay, found], api_name="find",
               **model_events)  # fmt: skip
    track.click(guard(api.track_video), [video, prompts], [tracked, masks], api_name="track_video",
                **model_events)  # fmt: skip
    annotate.click(guard(api.auto_annotate), [files, detector, classes], dataset, api_name="auto_annotate",
                   **model_events)  # fmt: skip
