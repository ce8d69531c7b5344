"""How ultralytics behaves inside our processes: it never installs packages on its own.

ultralytics replaces `PIL.Image.open` for the whole process, and on a file that PIL cannot identify it runs its
auto-installer (``pip install pi-heif``): in a web server that is a package install triggered by any stranger's
upload, and in a dataset run a surprise. ``YOLO_AUTOINSTALL=False`` turns the installer off; ultralytics reads the
variable once, when it is first imported, so this runs before our first import of ultralytics. A value the user set
explicitly is kept.
"""

from __future__ import annotations

import os
import sys

_VARIABLE = "YOLO_AUTOINSTALL"


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
