"""What a refused upload costs: a decompression bomb (a 670 KB PNG of 13300x13300 RGBA pixels) and a zip bomb
(a 1 MB zip of 990 MB of zeros), through our checks and through what the app did before (Gradio's gr.Image decoding
the upload, extracting the zip). Each measurement runs in a fresh process (`bench/isolated.py`); peak RSS growth is
sampled every millisecond. Prints a Markdown table.

    python bench/uploads.py
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.isolated import run_isolated


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(call: Callable[[], object]) -> dict:
    """Peak RSS growth (MB), seconds, and the refusal's message of one call."""
    start = peak = rss_mb()
    running = True

    def sample() -> None:
        nonlocal peak
        while running:
            peak = max(peak, rss_mb())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    began = time.perf_counter()
    outcome = "accepted"
    try:
        call()
    except Exception as error:
        outcome = f"refused: {str(error)[-70:]}"
    seconds = time.perf_counter() - began
    running = False
    sampler.join()
    return {"peak_mb": peak - start, "seconds": seconds, "outcome": outcome}


def worker(case: str, folder: Path) -> dict:
    if case == "image, ours":
        from annotate.images import read_image

        return measure(lambda: read_image(folder / "bomb.png", 25_000_000))
    if case == "image, gr.Image (before)":
        import gradio as gr
        from gradio.data_classes import FileData

        component = gr.Image(type="filepath")
        return measure(lambda: component.preprocess(FileData(path=str(folder / "bomb.png"), orig_name="bomb.png")))
    if case == "zip, ours":
        from app.settings import Limits
        from app.uploads import collect_uploads

        target = Path(tempfile.mkdtemp(dir=folder))
        result = measure(lambda: collect_uploads([str(folder / "bomb.zip")], target, Limits()))
        return {**result, "disk_mb": sum(p.stat().st_size for p in target.rglob("*") if p.is_file()) / 2**20}
    if case == "zip, extract then count (before)":
        target = Path(tempfile.mkdtemp(dir=folder))

        def extract() -> None:
            with zipfile.ZipFile(folder / "bomb.zip") as archive:
                for member in archive.infolist():
                    if member.file_size <= 10**8:  # the old per-member cap
                        archive.extract(member, target)

        result = measure(extract)
        return {**result, "disk_mb": sum(p.stat().st_size for p in target.rglob("*") if p.is_file()) / 2**20}
    raise ValueError(case)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], Path(sys.argv[3]))))
        return
    from PIL import Image

    folder = Path(tempfile.mkdtemp(prefix="bench_uploads_"))
    try:
        Image.new("RGBA", (13_300, 13_300)).save(folder / "bomb.png", optimize=True)
        with zipfile.ZipFile(folder / "bomb.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for index in range(11):  # 90 MB members: under the old per-member cap of 100 MB
                with archive.open(f"img_{index}.png", "w", force_zip64=True) as member:
                    for _ in range(90):
                        member.write(bytes(1 << 20))
        sizes = {name: (folder / name).stat().st_size / 2**10 for name in ("bomb.png", "bomb.zip")}
        print(f"bomb.png: {sizes['bomb.png']:.0f} KB (13300x13300 RGBA)")
        print(f"bomb.zip: {sizes['bomb.zip']:.0f} KB (990 MB of zeros)\n")
        print("| upload | path | peak RSS growth (MB) | disk written (MB) | seconds | outcome |")
        print("|---|---|---|---|---|---|")
        for case in ["image, ours", "image, gr.Image (before)", "zip, ours", "zip, extract then count (before)"]:
            row = run_isolated(__file__, ["--worker", case, str(folder)])
            if "error" in row:
                print(f"| {case} | | | | | failed: {row['error']} |")
                continue
            kind, path = case.split(", ")
            disk = f"{row['disk_mb']:.0f}" if "disk_mb" in row else "-"
            print(f"| {kind} | {path} | {row['peak_mb']:.0f} | {disk} | {row['seconds']:.3f} | {row['outcome']} |")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
