"""Start the SAM 2 studio: `python app.py [--model sam2.1_b.pt] [--device auto] [--host ...] [--port ...]`.

See `python app.py --help`; every flag also has an environment variable for hosted Spaces.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from app.settings import parse_settings

    settings = parse_settings(argv)
    from sam2_model import load_model

    try:
        model = load_model(settings.model, settings.device, untrained=settings.untrained)
    except (OSError, ValueError) as error:  # FileNotFoundError, ConnectionError (offline), corrupt file, bad device
        print(f"app.py: cannot load the SAM 2 model: {error}", file=sys.stderr)
        return 2
    if settings.untrained:
        print("app.py: WARNING: running with untrained (random) weights: masks are meaningless.", file=sys.stderr)

    from app.demo import build_demo

    limits = settings.limits
    demo = build_demo(model, limits)
    demo.queue(default_concurrency_limit=1, max_size=limits.max_queue).launch(
        server_name=settings.host,
        server_port=settings.port,
        share=settings.share,
        max_file_size=f"{limits.max_upload_mb}mb",  # Gradio's default is unlimited, and uploads need no login
        show_error=settings.debug,  # error toasts can show server paths: off unless debugging
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
