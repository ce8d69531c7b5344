"""Run one benchmark measurement in a fresh Python process and read back its JSON result.

Why a process each: loading our model switches glibc's allocator for the whole process
(`sam2_model.devices.keep_large_allocations_in_heap`) and ultralytics lowers torch's thread count; in one shared
process each library would change the others' figures. A fresh process also makes peak-memory figures clean.

Import this module before ultralytics: `import ultralytics` sets OMP_NUM_THREADS=1 in the environment when it is
unset, which every child process would inherit (torch would then run on one thread). The children get the value the
benchmark was started with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_OMP_NUM_THREADS_AT_START = os.environ.get("OMP_NUM_THREADS")


def run_isolated(script: str | Path, arguments: list[str]) -> dict:
    """`python script *arguments` -> the JSON object on its last stdout line, or {"error": its last stderr line}."""
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    env.pop("OMP_NUM_THREADS", None)
    if _OMP_NUM_THREADS_AT_START is not None:
        env["OMP_NUM_THREADS"] = _OMP_NUM_THREADS_AT_START
    result = subprocess.run([sys.executable, str(script), *arguments], capture_output=True, text=True, env=env)
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": (result.stderr.strip().splitlines() or ["no output"])[-1][:120]}
