"""`python -m annotate DATA [options]`: the command-line face of `auto_annotate`.

Arguments are parsed before torch and ultralytics are imported, so `--help` and usage errors answer at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .exporters import formats
from .settings import AUTO_HELP, DetectorSettings, VideoSettings
from .splits import VAL_FRACTION

_DEFAULTS = DetectorSettings()
_VIDEO = VideoSettings()


UNTRAINED_WARNING = "WARNING: untrained (random) weights: the boxes and masks are meaningless (offline smoke test)."


def build_parser(prog: str = "python -m annotate") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Annotate a folder of images and videos: YOLO boxes -> SAM 2 masks (tracked through videos, "
        "one id per object) -> a YOLO-seg (and COCO, YouTube-VIS, MOT) dataset with a validation split.",
    )
    parser.add_argument("data", help="folder of images and/or videos (searched recursively), or a video file")
    parser.add_argument(
        "--det-model",
        "--boxes",
        dest="det_model",
        default="auto",
        help=f"YOLO model name or path, or auto [auto; {AUTO_HELP}]; or boxes you already have, to become masks: a "
        "folder of YOLO detection labels (<image name>.txt, a video's keyframes <video>/<frame>.txt; classes.txt or "
        "data.yaml names the classes) or a COCO .json with boxes, matched to the images by name",
    )
    parser.add_argument("--sam-model", default="auto", help="SAM 2 name, Meta file name or path, or auto [auto]")
    parser.add_argument("--device", default=_DEFAULTS.device, help="'' (auto), cpu, cuda, cuda:N, N or mps")
    parser.add_argument(
        "--conf", type=float, default=_DEFAULTS.conf, help=f"detector confidence threshold [{_DEFAULTS.conf}]"
    )
    parser.add_argument(
        "--iou", type=float, default=_DEFAULTS.iou, help=f"detector NMS IoU threshold [{_DEFAULTS.iou}]"
    )
    parser.add_argument("--imgsz", type=int, default=_DEFAULTS.imgsz, help=f"detector input size [{_DEFAULTS.imgsz}]")
    parser.add_argument(
        "--max-det", type=int, default=_DEFAULTS.max_det, help=f"maximum detections per image [{_DEFAULTS.max_det}]"
    )
    parser.add_argument(
        "--classes",
        nargs="+",
        help="classes to keep, by id (0 2) or by name (person forklift); with a YOLOE or YOLO-World detector, any "
        "names: they are its text prompts (default: all)",
    )
    parser.add_argument(
        "--text-embeddings",
        metavar="NPZ",
        help="the class names' text embeddings (annotate.detectors.save_text_embeddings), for YOLOE/YOLO-World "
        "where the text encoder cannot be downloaded",
    )
    parser.add_argument(
        "--output",
        help="dataset folder [<DATA>_auto_annotate_labels beside DATA; in the current folder when DATA is inside a "
        "Python package, e.g. the shipped examples]",
    )
    parser.add_argument(
        "--format",
        nargs="+",
        default=["yolo"],
        choices=formats(),
        dest="formats",
        help="output formats; yolo labels are always written [yolo]",
    )
    parser.add_argument("--overwrite", action="store_true", help="redo images finished by an earlier run")
    parser.add_argument("--batch-size", type=int, default=8, help="images per detector call [8]")
    parser.add_argument("--workers", type=int, default=4, help="image decoding threads [4]")
    parser.add_argument("--min-mask-area", type=int, default=0, help="smaller masks fall back to the box [0]")
    parser.add_argument("--simplify", type=float, default=0.0, help="polygon tolerance in pixels, 0 = exact [0]")
    parser.add_argument("--names", nargs="+", help="class names in class-id order (default: the detector's)")
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=VAL_FRACTION,
        help="share of images and videos held out for validation (val.txt), whole videos, seeded; 0: validate on "
        f"the training set [{VAL_FRACTION}]",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    video = parser.add_argument_group("videos")
    video.add_argument(
        "--keyframe-interval",
        type=int,
        default=_VIDEO.keyframe_interval,
        help=f"run the detector on every N-th used frame; SAM 2 tracks in between [{_VIDEO.keyframe_interval}]",
    )
    video.add_argument(
        "--frame-stride",
        type=int,
        default=_VIDEO.frame_stride,
        help=f"use (track and write) every N-th frame of a video [{_VIDEO.frame_stride}]",
    )
    video.add_argument(
        "--match-iou",
        type=float,
        default=_VIDEO.match_iou,
        help=f"mask IoU for a detection to keep its track's id; below it, a new track [{_VIDEO.match_iou}]",
    )
    video.add_argument(
        "--reprompt-iou",
        type=float,
        default=_VIDEO.reprompt_iou,
        help="re-prompt a matched track with its detection's box when their masks overlap less than this [never]",
    )
    video.add_argument(
        "--end-after",
        type=int,
        default=_VIDEO.end_after,
        help=f"a track with an empty mask ends after this many keyframes without a detection [{_VIDEO.end_after}]",
    )
    video.add_argument(
        "--preview", action="store_true", help="also write previews/<video>.mp4 with the masks and track ids drawn"
    )
    video.add_argument(
        "--max-tracks",
        type=int,
        default=_VIDEO.max_tracks,
        help="track at most N objects per video; further detections are not tracked (the summary counts them) "
        "[no limit]",
    )
    parser.add_argument(
        "--untrained",
        action="store_true",
        help="random weights instead of downloads: SAM 2 of --sam-model's architecture, and a YOLO built from its "
        "yaml (yolo11n.pt -> yolo11n.yaml) unless --det-model is a file; for trying the tool offline (meaningless "
        "labels)",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run on Ray: a local Ray for the run, or the cluster at ADDRESS (e.g. auto); needs Ray: "
        "pip install 'ray[data]>=2.40' (the package's [ray] extra)",
    )
    return parser


def parse_classes(values: list[str] | None) -> list[int] | list[str] | None:
    """--classes: ids when every value is a number, else names."""
    if not values:
        return None
    return [int(v) for v in values] if all(v.lstrip("-").isdigit() for v in values) else list(values)


def main(argv: list[str] | None = None, prog: str = "sam2-annotate") -> int:
    args = build_parser(prog).parse_args(argv)
    from .pipeline import auto_annotate

    try:
        det_model, sam_model = args.det_model, args.sam_model
        if args.untrained:
            print(f"{prog}: {UNTRAINED_WARNING}", file=sys.stderr)
            from sam2_model import load_model

            from .detectors import resolve_auto_detector

            settings = DetectorSettings(device=args.device)
            sam_model = load_model(sam_model, settings.sam_device(), untrained=True)
            det_model = str(resolve_auto_detector(det_model, settings))
            if det_model.endswith(".pt") and not Path(det_model).is_file():
                det_model = det_model[: -len(".pt")] + ".yaml"  # ultralytics builds it from the yaml it ships
        summary = auto_annotate(
            args.data,
            det_model=det_model,
            sam_model=sam_model,
            device=args.device,
            conf=args.conf,
            iou=args.iou,
            imgsz=args.imgsz,
            max_det=args.max_det,
            classes=parse_classes(args.classes),
            output_dir=args.output,
            formats=args.formats,
            overwrite=args.overwrite,
            batch_size=args.batch_size,
            workers=args.workers,
            progress=not args.no_progress,
            min_mask_area=args.min_mask_area,
            simplify=args.simplify,
            class_names=args.names,
            backend="local" if args.ray is None else "ray",
            ray_address=None if args.ray in (None, "local") else args.ray,
            keyframe_interval=args.keyframe_interval,
            frame_stride=args.frame_stride,
            match_iou=args.match_iou,
            reprompt_iou=args.reprompt_iou,
            end_after=args.end_after,
            preview=args.preview,
            max_tracks=args.max_tracks,
            text_embeddings=args.text_embeddings,
            val_fraction=args.val_fraction,
        )
    except (OSError, ValueError, ImportError) as error:  # missing folder, no images, offline weights, bad checkpoint
        offline = ""
        if isinstance(error, ConnectionError) and not args.untrained:  # a download failed: how to try it now
            offline = (
                f" To try the tool now without downloads: {prog} {args.data} --untrained (random weights: every step "
                "and file is real, the masks are meaningless; with boxes you already have, add --det-model "
                "path/to/labels/)."
            )
        print(f"{prog}: {error}{offline}", file=sys.stderr)
        return 2
    print(summary)
    return 1 if summary.failed or summary.failed_videos else 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m annotate"))
