"""How ultralytics behaves inside our processes: it never installs packages on its own, and stays quiet.

ultralytics replaces `PIL.Image.open` for the whole process, and on a file that PIL cannot identify it runs its
auto-installer (``pip install pi-heif``): in a web server that is a package install triggered by any stranger's
upload, and in a dataset run a surprise. ``YOLO_AUTOINSTALL=False`` turns the installer off; ultralytics reads the
variable once, when it is first imported, so this runs before our first import of ultralytics. A value the user set
explicitly is kept.
"""

from __future__ import annotations

import logging
import os
import sys

_VARIABLE = "YOLO_AUTOINSTALL"
_FIRST_RUN_NOTICE = "Creating new Ultralytics Settings"


def disable_autoinstall() -> None:
    """No pip installs from ultralytics in this process, unless the user set YOLO_AUTOINSTALL themselves."""
    if _VARIABLE in os.environ:
        return
    os.environ[_VARIABLE] = "False"
    checks = sys.modules.get("ultralytics.utils.checks")
    if checks is not None:  # ultralytics was imported before us: switch off the flag it already read
        checks.AUTOINSTALL = False  # type: ignore[attr-defined]
    utils = sys.modules.get("ultralytics.utils")
    if utils is not None:
        utils.AUTOINSTALL = False  # type: ignore[attr-defined]


class _DropFirstRunNotice(logging.Filter):
    """ultralytics announces on its very first import that it created its settings file; a user of our tools did not
    ask for ultralytics and needs not read about it (with YOLO_VERBOSE set, ultralytics speaks as it likes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_FIRST_RUN_NOTICE)


def quiet_first_run_notice() -> None:
    """Install the filter on ultralytics' logger (it survives ultralytics configuring that logger on import)."""
    if "YOLO_VERBOSE" in os.environ:
        return
    logger = logging.getLogger("ultralytics")
    if not any(isinstance(f, _DropFirstRunNotice) for f in logger.filters):
        logger.addFilter(_DropFirstRunNotice())
