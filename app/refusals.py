"""The app's own refusals: what a user or program asked that we will not do, with a message meant for them.

Gradio-free, so the workflows raise them and the handler boundary (`errors.guard`) shows them; any other exception
is a bug, logged with its traceback and shown as an apology.
"""

from __future__ import annotations


class Refusal(ValueError):
    """Bad input, refused: the message says what was wrong and what to do instead (no server path in it)."""


class FoundNothing(Refusal):
    """Find found nothing scored high enough: in the browser a warning (the objects stay as they were); the named
    API answers with an empty list instead, since "none" is a valid answer to a program."""


class TrackingInProgress(RuntimeError):
    """An edit of a video whose tracking is running (bad state, not bad input): wait, or Cancel."""

    def __init__(self, message: str = "Tracking is in progress: wait until it has finished, or Cancel it.") -> None:
        super().__init__(message)
