"""The studio's command line: `python app.py [options]` in a checkout, `sam2-studio [options]` once installed.

Arguments are parsed before torch is imported, so `--help` and usage errors answer at once.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

UNTRAINED_WARNING = "WARNING: running with untrained (random) weights: masks are meaningless."


def command(prog: str) -> str:
    """How the user started us, to repeat in advice: ``python app.py`` in a checkout, else the console script."""
    return f"python {prog}" if prog.endswith(".py") else prog


def main(argv: Sequence[str] | None = None, prog: str = "sam2-studio") -> int:
    """Load the model, build the studio and serve it; 2 when the model cannot be loaded (one line says why)."""
    from .settings import parse_settings

    settings = parse_settings(argv, prog=prog)
    from .gpu import import_spaces

    # before torch: on a ZeroGPU Space `spaces` must patch torch's CUDA before anything picks a device, so that
    # "auto" and "cuda" mean the GPU its workers get (the model is loaded on "cuda" here, moved there by the package)
    import_spaces()
    from sam2_model import load_model
    from sam2_model.devices import select_device

    try:
        device = select_device(settings.device)
        model = load_model(settings.model, device, untrained=settings.untrained)  # "auto": by device
    except (OSError, ValueError) as error:  # FileNotFoundError, ConnectionError (offline), corrupt file, bad device
        offline = ""
        if isinstance(error, ConnectionError):  # a download failed: the way to try the app without one
            offline = (
                f" To try the app now without a download: {command(prog)} --untrained (random weights: every "
                "control works, the masks are meaningless)."
            )
        print(f"{prog}: cannot load the SAM 2 model: {error}{offline}", file=sys.stderr)
        return 2
    if settings.untrained:
        print(f"{prog}: {UNTRAINED_WARNING}", file=sys.stderr)

    from .demo import build_demo
    from .detector_pool import DetectorPool
    from .services import FINDERS

    limits = settings.limits
    finders = DetectorPool(FINDERS, text_embeddings=settings.text_embeddings)  # Find's YOLOE and YOLO-World
    demo = build_demo(model, limits, proxies=settings.trusted_proxies, finders=finders, dataset=settings.dataset)
    demo.queue(default_concurrency_limit=1, max_size=limits.max_queue).launch(
        server_name=settings.host,
        server_port=settings.port,
        share=settings.share,
        max_file_size=f"{limits.max_upload_mb}mb",  # Gradio's default is unlimited, and uploads need no login
        show_error=settings.debug,  # error toasts can show server paths: off unless debugging
        quiet=True,  # Gradio's notes name its own API ("set `share=True` in `launch()`"): ours name our flags
        prevent_thread_lock=True,
    )
    print(f"* Running on local URL:  {demo.local_url}", flush=True)
    if not settings.share:
        print(f"* To create a public link, start with --share ({command(prog)} --share).", flush=True)
    demo.block_thread()
    return 0


if __name__ == "__main__":
    sys.exit(main())
