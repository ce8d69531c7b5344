"""Prompts as people and programs send them (clicks, JSON of points and boxes), parsed, checked and bounded.

Every check names what was wrong and what is expected; none lets one request cost more than the limits allow:
JSON texts are capped in length (so nesting depth is too) before they are parsed, points are capped in number, and
coordinates must lie on the image.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from typing import Any

from .refusals import Refusal

# What a click on a picture adds (the tabs' mode radios show these words)
POSITIVE, NEGATIVE, BOX, BOX_CLICKS = "Positive click", "Negative click", "Box (drag)", "Box (two clicks)"
IMAGE_MODES = [POSITIVE, NEGATIVE, BOX, BOX_CLICKS]
VIDEO_MODES = [POSITIVE, NEGATIVE, BOX_CLICKS]

MAX_CLASS_NAME = 64  # characters of an object's class name (what the exports call it)
MAX_JSON_CHARS = 100_000  # a prompt of 64 points is under 2 KB; this bounds parsing time and nesting depth
MAX_PHRASES = 16  # names Find looks for in one request: each is a class of the open-vocabulary detector's head
MAX_PHRASE_CHARS = MAX_CLASS_NAME  # a phrase becomes the found objects' class name
FIND_CONFIDENCE = 0.25  # the Find slider's first value (ultralytics' default detector threshold)
PHRASES_USAGE = 'Type what to find as short names separated by commas, e.g. "person, red car"'

POINTS_USAGE = "points must be JSON [[x, y, label], ...] in image pixels, label 1 (object) or 0 (background)"
BOX_USAGE = "box must be JSON [x0, y0, x1, y1] in image pixels, or null"
PROMPTS_USAGE = (
    'prompts must be a JSON list like [{"frame": 0, "obj_id": 1, "points": [[x, y, 1]]}] (each item may also '
    'have "box": [x0, y0, x1, y1])'
)


class PromptError(Refusal):
    """A prompt we refuse; the message is meant for the person or program that sent it."""


@dataclass(frozen=True)
class VideoPrompt:
    """One item of /track_video's prompts: clicks and/or a box for one object on one frame (video pixels)."""

    frame: int
    obj_id: int
    points: list[tuple[float, float, int]]
    box: list[float] | None


def parse_json(text: str | None, usage: str) -> Any:
    """JSON text -> value; PromptError with `usage` for text that is too long, not JSON, or nested too deep."""
    if text is None:
        return None
    if not isinstance(text, str) or len(text) > MAX_JSON_CHARS:
        raise PromptError(f"{usage} (at most {MAX_JSON_CHARS:,} characters).")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise PromptError(f"{usage}; this is not valid JSON.") from error


def check_point(value: Any, size_wh: tuple[int, int]) -> tuple[float, float, int]:
    """[x, y, label] -> (x, y, label): finite numbers on the image, label exactly 0 or 1 (or a boolean)."""
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise PromptError(f"{POINTS_USAGE}; got {json.dumps(value)[:80]}.")
    x, y, label = value
    if isinstance(label, bool):
        label = int(label)
    if not (isinstance(label, int) and label in (0, 1)):
        raise PromptError(f"A point's label must be 1 (object) or 0 (background), got {json.dumps(label)[:40]}.")
    x, y = _coordinate(x, "x"), _coordinate(y, "y")
    width, height = size_wh
    if not (0 <= x < width and 0 <= y < height):
        raise PromptError(f"The point ({x:g}, {y:g}) is outside the {width}x{height} image.")
    return x, y, label


def click_position(index: Any, size_wh: tuple[int, int]) -> tuple[int, int]:
    """A click event's `index` ([x, y] image pixels from Gradio) -> (x, y) on the image; PromptError otherwise."""
    if not isinstance(index, (list, tuple)) or len(index) != 2:
        raise PromptError("A click must be a position [x, y] on the image.")
    x, y, _ = check_point([index[0], index[1], 1], size_wh)
    return int(x), int(y)


def frame_number(value: Any, num_frames: int) -> int:
    """A frame index (an integer number, as the slider sends it) -> int in range; PromptError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value % 1:
        raise PromptError(f"The frame must be a whole number, got {json.dumps(value)[:40]}.")
    if not 0 <= value < num_frames:
        raise PromptError(f"Frame {value:g} does not exist: this video has frames 0..{num_frames - 1}.")
    return int(value)


def class_name(text: str | None) -> str:
    """What a person typed as an object's class name -> the name kept: whitespace collapsed, at most MAX_CLASS_NAME
    characters ("" when nothing was typed)."""
    return " ".join(str(text or "").split())[:MAX_CLASS_NAME]


def parse_phrases(text: Any, max_phrases: int = MAX_PHRASES, max_chars: int = MAX_PHRASE_CHARS) -> list[str]:
    """What to find, as typed ("person, red car") -> the phrases in order: split at commas (and new lines), spaces
    collapsed, empty parts and repeats (case-insensitively) dropped. PromptError for no phrase, more than
    `max_phrases`, or a phrase longer than `max_chars` characters; the text's length is bounded before it is split."""
    if text is not None and not isinstance(text, str):
        raise PromptError(f"{PHRASES_USAGE}; got {type(text).__name__}.")
    if text is not None and len(text) > max_phrases * (max_chars + 2):
        raise PromptError(f"{PHRASES_USAGE}: at most {max_phrases} names of at most {max_chars} characters each.")
    phrases: list[str] = []
    for part in (text or "").replace("\n", ",").split(","):
        phrase = " ".join(part.split())
        if phrase and phrase.lower() not in (p.lower() for p in phrases):
            phrases.append(phrase)
    if not phrases:
        raise PromptError(f"{PHRASES_USAGE}.")
    if len(phrases) > max_phrases:
        raise PromptError(f"{len(phrases)} names were given; Find takes at most {max_phrases} at once.")
    long = [p for p in phrases if len(p) > max_chars]
    if long:
        raise PromptError(f"{long[0][:40]!r}... is {len(long[0])} characters; a name may have at most {max_chars}.")
    return phrases


def object_number(value: Any, max_objects: int) -> int:
    """An object number as a number box or the object list sends it (3, 3.0 or "3") -> int in 1..max_objects;
    PromptError otherwise."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value % 1:
        raise PromptError(f"The object number must be a whole number, got {json.dumps(value)[:40]}.")
    if not 1 <= value <= max_objects:
        raise PromptError(f"Objects are numbered 1 to {max_objects}, got {value:g}.")
    return int(value)


def check_points(value: Any, size_wh: tuple[int, int], max_points: int) -> list[tuple[float, float, int]]:
    """A JSON list of [x, y, label] -> checked points, at most `max_points` of them."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise PromptError(f"{POINTS_USAGE}.")
    if len(value) > max_points:
        raise PromptError(f"{len(value)} points were given; the limit is {max_points} per object.")
    return [check_point(point, size_wh) for point in value]


def check_box(value: Any, size_wh: tuple[int, int]) -> list[float] | None:
    """[x0, y0, x1, y1] -> the box with its corners ordered and clipped to the image; None for null.

    PromptError for anything but one box of four finite numbers, and for a box entirely off the image."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 4 or any(isinstance(v, (list, dict)) for v in value):
        raise PromptError(f"{BOX_USAGE} (one box of four numbers); got {json.dumps(value)[:80]}.")
    x0, y0, x1, y1 = (_coordinate(v, "box") for v in value)
    width, height = size_wh
    x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
    if x1 < 0 or y1 < 0 or x0 >= width or y0 >= height:
        raise PromptError(f"The box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] is outside the {width}x{height} image.")
    return [max(x0, 0.0), max(y0, 0.0), min(x1, width - 1.0), min(y1, height - 1.0)]


def check_video_prompts(
    value: Any, num_frames: int, size_wh: tuple[int, int], max_points: int, max_prompts: int
) -> list[VideoPrompt]:
    """/track_video's prompts -> checked `VideoPrompt`s (frames in range, integer object ids >= 1)."""
    if not isinstance(value, list) or not value or not all(isinstance(p, dict) for p in value):
        raise PromptError(f"{PROMPTS_USAGE}.")
    if len(value) > max_prompts:
        raise PromptError(f"{len(value)} prompts were given; the limit is {max_prompts}.")
    prompts = []
    for item in value:
        frame, obj_id = item.get("frame", 0), item.get("obj_id", 1)
        for name, number in (("frame", frame), ("obj_id", obj_id)):
            if isinstance(number, bool) or not isinstance(number, int):
                raise PromptError(f'"{name}" must be an integer, got {json.dumps(number)[:40]} in {PROMPTS_USAGE}.')
        if not 0 <= frame < num_frames:
            raise PromptError(f"Frame {frame} does not exist: this video has frames 0..{num_frames - 1}.")
        if obj_id < 1:
            raise PromptError(f'"obj_id" must be 1 or more, got {obj_id}.')
        points = check_points(item.get("points"), size_wh, max_points)
        box = check_box(item.get("box"), size_wh)
        if not points and box is None:
            raise PromptError(f"Prompt {json.dumps(item)[:80]} has neither points nor a box.")
        prompts.append(VideoPrompt(frame, obj_id, points, box))
    return prompts


def _coordinate(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PromptError(f"Coordinates ({what}) must be finite numbers in pixels, got {json.dumps(value)[:40]}.")
    return float(value)
