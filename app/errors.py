"""The handler boundary: every event handler is wrapped by `guard`, the one place where exceptions become what the
person in the browser (or the program calling the API) sees.

- our own refusals (`USER_ERRORS`: `gr.Error`, `refusals.Refusal` and its kin `PromptError` and `UploadError`,
  `TrackingInProgress`, `SessionLimitError`) are shown with their message, any file path in it replaced by
  "<file>";
- running out of memory (host or GPU) gets its own message;
- anything else — a ValueError, KeyError or IndexError from deep inside included — is a bug or an outage: logged on
  the server with its traceback, shown as a short apology without details (server paths and tracebacks never reach
  the browser).

In the browser (`keep=` the event's number of outputs) a refusal is a warning toast and every output keeps what it
showed: an error would replace the user's work surface with Gradio's red "Error" badges. Programs calling the named
API get the error itself.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr
import torch

from .refusals import Refusal, TrackingInProgress
from .sessions import SessionLimitError

logger = logging.getLogger("sam2_studio")

APOLOGY = (
    "Sorry, something went wrong on the server while handling this request (it has been logged). Please try again, "
    "or with other input."
)
OUT_OF_MEMORY = "This request needs more memory than the server has: try a smaller image or video."
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][^\s'\"/\\:,;()\[\]]+){2,}[/\\]?")

Handler = TypeVar("Handler", bound=Callable[..., Any])
USER_ERRORS = (gr.Error, Refusal, TrackingInProgress, SessionLimitError)


def user_message(error: Exception) -> str:
    """The message shown for `error` (see the module's docstring); logs unexpected errors with their traceback."""
    if isinstance(error, gr.Error):
        return str(error.message)
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        logger.exception("out of memory in a request")
        return OUT_OF_MEMORY
    if isinstance(error, USER_ERRORS):
        return _PATH.sub("<file>", str(error)) or APOLOGY
    logger.exception("unexpected error in a request")
    return APOLOGY


def guard(handler: Handler, keep: int | None = None) -> Handler:
    """`handler` (a function or a generator function) with its exceptions turned into `gr.Error`s, or, with `keep`
    (its number of outputs), into a warning and `keep` unchanged outputs."""

    def refuse(error: Exception) -> Any:
        message = user_message(error)
        if keep is None:
            raise gr.Error(message) from error
        gr.Warning(message)
        return gr.skip() if keep == 1 else tuple(gr.skip() for _ in range(keep))

    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def stream(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from handler(*args, **kwargs)
            except Exception as error:
                yield refuse(error)

        return stream  # type: ignore[return-value]

    @functools.wraps(handler)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except Exception as error:
            return refuse(error)

    return call  # type: ignore[return-value]
