"""The app's settings, from the command line or environment variables (hosted Spaces set the latter)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sam2_model.auto import AUTO, AUTO_MODELS, model_for_device

from .clients import TrustedProxies

_TRUE = {"1", "true", "yes", "on"}
# "auto": the model a person can wait for on this device (`sam2_model.auto`, the rule annotate follows too)
DEFAULT_MODEL = AUTO

__all__ = [
    "AUTO_MODELS",
    "DEFAULT_MODEL",
    "AppSettings",
    "Limits",
    "limits_from_env",
    "model_for_device",
    "parse_settings",
]


@dataclass(frozen=True)
class Limits:
    """What one request, and one client (address: `clients.client_address`), may use; each refusal names its limit.
    Defaults fit a free CPU Space.

    Per client: `max_sessions_per_client` browser tabs; `max_requests_per_client` requests of any kind and
    `max_model_requests_per_client` model requests queued or running at once (see `fair_queue`). Per video of the
    Auto-annotate tab, and per Find on a video's frame: `max_tracks` objects tracked.
    """

    max_upload_mb: int = 50
    max_image_pixels: int = 25_000_000
    max_video_frames: int = 300
    max_video_pixels: int = 1920 * 1080
    max_video_seconds: float = 60.0
    max_annotate_images: int = 100
    max_zip_entries: int = 1000
    max_expanded_mb: int = 500
    max_prompt_points: int = 64
    max_objects: int = 32
    max_sessions: int = 32
    max_sessions_per_client: int = 4
    idle_timeout_s: float = 1800.0
    max_queue: int = 64
    max_requests_per_client: int = 16
    max_model_requests_per_client: int = 2
    model_concurrency: int = 2
    max_tracks: int = 10


_LIMIT_ENV = {
    "max_upload_mb": "SAM2_MAX_UPLOAD_MB",
    "max_image_pixels": "SAM2_MAX_IMAGE_PIXELS",
    "max_video_frames": "SAM2_MAX_VIDEO_FRAMES",
    "max_video_pixels": "SAM2_MAX_VIDEO_PIXELS",
    "max_video_seconds": "SAM2_MAX_VIDEO_SECONDS",
    "max_annotate_images": "SAM2_MAX_ANNOTATE_IMAGES",
    "max_zip_entries": "SAM2_MAX_ZIP_ENTRIES",
    "max_expanded_mb": "SAM2_MAX_EXPANDED_MB",
    "max_prompt_points": "SAM2_MAX_PROMPT_POINTS",
    "max_objects": "SAM2_MAX_OBJECTS",
    "max_sessions": "SAM2_MAX_SESSIONS",
    "max_sessions_per_client": "SAM2_MAX_SESSIONS_PER_CLIENT",
    "idle_timeout_s": "SAM2_IDLE_TIMEOUT_S",
    "max_queue": "SAM2_MAX_QUEUE",
    "max_requests_per_client": "SAM2_MAX_REQUESTS_PER_CLIENT",
    "max_model_requests_per_client": "SAM2_MAX_MODEL_REQUESTS_PER_CLIENT",
    "model_concurrency": "SAM2_MODEL_CONCURRENCY",
    "max_tracks": "SAM2_MAX_TRACKS",
}


def limits_from_env(environ: Mapping[str, str]) -> Limits:
    """Limits from SAM2_* environment variables (see `_LIMIT_ENV`); a bad value is an error naming the variable."""
    values = {}
    for name, variable in _LIMIT_ENV.items():
        if variable in environ:
            kind = type(getattr(Limits, name))
            try:
                values[name] = kind(environ[variable])
            except ValueError as error:
                raise ValueError(f"{variable}={environ[variable]!r} is not a {kind.__name__}.") from error
            if values[name] <= 0:
                raise ValueError(f"{variable} must be positive, got {environ[variable]!r}.")
    return Limits(**values)


class _PrintExamples(argparse.Action):
    """`--examples`: print `app.examples_dir()` and exit (like --help, whatever else is on the line)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: object, values: object, option_string: str | None = None
    ) -> None:
        from . import examples_dir

        print(examples_dir())
        parser.exit()


@dataclass(frozen=True)
class AppSettings:
    """What `python app.py` runs with."""

    model: str = DEFAULT_MODEL
    device: str = "auto"
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    untrained: bool = False
    debug: bool = False
    limits: Limits = field(default_factory=Limits)
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    dataset: str | None = None
    text_embeddings: str | None = None


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None, prog: str = "python app.py"
) -> AppSettings:
    """Read settings: command-line flags win over environment variables, which win over the defaults."""
    env = os.environ if environ is None else environ
    on_space = "SPACE_ID" in env  # Hugging Face Spaces must listen on all interfaces
    parser = argparse.ArgumentParser(
        prog=prog,
        description="SAM 2 studio: segment and track objects with clicks and boxes in a Gradio web app.",
        epilog=(
            "Environment variables (for hosted Spaces): SAM2_MODEL, SAM2_DEVICE, GRADIO_SERVER_NAME, "
            "GRADIO_SERVER_PORT, GRADIO_SHARE, SAM2_UNTRAINED, SAM2_DEBUG, SAM2_TRUSTED_PROXY; limits: "
            + ", ".join(_LIMIT_ENV.values())
            + ". Offline? Try the app now with --untrained (random weights, no download: every control works, the "
            "masks are meaningless); for real masks download the checkpoint auto picks (sam2.1_t.pt on a CPU, "
            "sam2.1_b.pt on a CUDA GPU) elsewhere and pass --model /path/to/it."
        ),
    )
    parser.add_argument(
        "--examples",
        action=_PrintExamples,
        help="Print the folder of the example media shipped with the package (app.examples_dir()) and exit.",
    )
    parser.add_argument(
        "--model",
        default=env.get("SAM2_MODEL", DEFAULT_MODEL),
        help=(
            "SAM 2 checkpoint: auto (sam2.1_b.pt on a CUDA GPU, sam2.1_t.pt on a CPU), an ultralytics asset name "
            "(sam2.1_t.pt, sam2.1_s.pt, sam2.1_b.pt, sam2.1_l.pt, sam2_t/s/b/l.pt), a Meta checkpoint file name "
            "(sam2.1_hiera_tiny.pt ... sam2.1_hiera_base_plus.pt, sam2.1_hiera_large.pt), both downloaded on first "
            f"use, or a local path. [env SAM2_MODEL, default {DEFAULT_MODEL}]"
        ),
    )
    parser.add_argument(
        "--device",
        default=env.get("SAM2_DEVICE", "auto"),
        help="auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps. [env SAM2_DEVICE, default auto]",
    )
    parser.add_argument(
        "--host",
        default=env.get("GRADIO_SERVER_NAME", "0.0.0.0" if on_space else "127.0.0.1"),
        help="Interface to listen on; 0.0.0.0 for all. [env GRADIO_SERVER_NAME, default 127.0.0.1]",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(env.get("GRADIO_SERVER_PORT", "7860")),
        help="Port to listen on. [env GRADIO_SERVER_PORT, default 7860]",
    )
    parser.add_argument(
        "--share",
        action="store_true",
        default=env.get("GRADIO_SHARE", "").lower() in _TRUE,
        help="Also serve on a temporary public gradio.live link. [env GRADIO_SHARE=1]",
    )
    parser.add_argument(
        "--untrained",
        action="store_true",
        default=env.get("SAM2_UNTRAINED", "").lower() in _TRUE,
        help="Use random weights for --model's architecture instead of a checkpoint (smoke tests only: masks are "
        "meaningless). [env SAM2_UNTRAINED=1]",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=env.get("SAM2_DEBUG", "").lower() in _TRUE,
        help="Show error details in the browser (never on a public server). [env SAM2_DEBUG=1]",
    )
    parser.add_argument(
        "--trusted-proxy",
        default=env.get("SAM2_TRUSTED_PROXY", "private" if on_space else "0"),
        help="Whose X-Forwarded-For header names the client that per-client limits count: 0 (no one's: the peer is "
        "the client), 1 (any peer's; the leftmost address), private (private-network peers', as a Hugging Face "
        "Space's proxy; the rightmost other address) or a comma-separated list of proxy addresses and networks. "
        "[env SAM2_TRUSTED_PROXY, default private on a Hugging Face Space, else 0]",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        metavar="PATH",
        help="A dataset to review and correct in the Review tab, saved in place: an auto_annotate folder, a YOLO-seg "
        "data.yaml or folder, or a COCO .json (on your own machine; a hosted studio takes an uploaded zip instead).",
    )
    parser.add_argument(
        "--text-embeddings",
        default=env.get("SAM2_TEXT_EMBEDDINGS") or None,
        help="Find by name without the detectors' text encoder (a machine offline): a .npz of names' embeddings "
        "saved elsewhere with annotate.detectors.save_text_embeddings. [env SAM2_TEXT_EMBEDDINGS]",
    )
    args = parser.parse_args(argv)
    if args.dataset is not None and not os.path.exists(args.dataset):
        parser.error(f"--dataset {args.dataset}: no such file or folder; give an auto_annotate folder, a data.yaml, "
                     "or a COCO .json.")  # fmt: skip
    if args.text_embeddings is not None and not os.path.isfile(args.text_embeddings):
        parser.error(f"--text-embeddings: no file {args.text_embeddings!r}")
    if not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535, got {args.port}")
    try:
        limits = limits_from_env(env)
        proxies = TrustedProxies.parse(args.trusted_proxy)
    except ValueError as error:
        parser.error(str(error))
    return AppSettings(
        model=args.model,
        device=args.device,
        host=args.host,
        port=args.port,
        share=args.share,
        untrained=args.untrained,
        debug=args.debug,
        limits=limits,
        trusted_proxies=proxies,
        dataset=args.dataset,
        text_embeddings=args.text_embeddings,
    )
