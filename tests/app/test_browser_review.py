"""The Review tab in headless Chromium, as a person uses it (see `browser.py`): the studio started with
`--dataset` on a small `auto_annotate` folder made here, then open, filter, fix a mask with a click, delete one,
relabel, accept, move on with the keys, save; the saved files are read back by the dataset reader. Hosted (no
`--dataset`), the folder is uploaded as a zip, edited, accepted, undone across items, and saved as a download."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from pycocotools.coco import COCO

from .browser import CHROMIUM_MISSING

if CHROMIUM_MISSING:
    pytest.skip(
        "Chromium is not installed: apt-get install chromium && pip install playwright", allow_module_level=True
    )

from playwright.sync_api import expect

from annotate import auto_annotate
from annotate.dataset import open_dataset
from app.demo import build_demo
from app.exports import zip_dataset
from app.settings import Limits, parse_settings

from ..annotate.clips import ColourDetector
from .browser import WAIT_MS, click_image_pixel, drag, idle, picture_of, screenshot_path, settled
from .conftest import served

GREEN_DISC = (230, 160)  # centre of the green disc of "shot" (320x240)


def picture(red: bool, green: bool) -> np.ndarray:
    """320x240 RGB: a textured grey ground, a red rectangle and a green disc where asked."""
    image = np.random.default_rng(3).integers(40, 90, (240, 320, 3), dtype=np.uint8)
    if red:
        image[40:140, 30:150] = (220, 40, 40)
    if green:
        yy, xx = np.mgrid[:240, :320]
        image[(yy - GREEN_DISC[1]) ** 2 + (xx - GREEN_DISC[0]) ** 2 < 50**2] = (40, 200, 60)
    return image


@pytest.fixture(scope="module")
def photos_run(tmp_path_factory, small_model):
    """An auto_annotate run of three pictures (shot: red and green, pic: red, photo: nothing), found by colour and
    segmented by untrained SAM 2; tests use copies of it."""
    data = tmp_path_factory.mktemp("review_browser") / "photos"
    data.mkdir()
    for name, (red, green) in {"shot": (True, True), "pic": (True, False), "photo": (False, False)}.items():
        cv2.imwrite(str(data / f"{name}.png"), picture(red, green)[:, :, ::-1])
    folder = data.parent / "run"
    auto_annotate(data, det_model=ColourDetector(), sam_model=small_model, output_dir=folder,
                  formats=["yolo", "coco", "masks"], progress=False)  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def review_app(photos_run, small_model):
    """(url, dataset folder): the studio started as `sam2-studio --dataset FOLDER` on a copy of the run."""
    folder = photos_run.parent / "dataset"
    shutil.copytree(photos_run, folder, symlinks=True)
    settings = parse_settings(["--dataset", str(folder)], environ={})
    with served(build_demo(small_model, settings.limits, dataset=settings.dataset)) as url:
        yield url, folder


@pytest.fixture(scope="module")
def hosted_app(small_model):
    """The studio as hosted: no --dataset, a dataset reaches the Review tab as an uploaded zip."""
    with served(build_demo(small_model, Limits(max_sessions=4))) as url:
        yield url


def choose(page, dropdown: str, option: str) -> None:
    page.locator(f"{dropdown} input").first.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.locator("#review_steps").click()  # the focus leaves the text box: the keys work again


def save_and_close(page, saved: str, screenshot: Path) -> None:
    """Save once the editor has settled, wait for `saved` in the status line, take the screenshot, close the page."""
    settled(page, "#review_canvas")
    page.locator("#review_save").click()
    expect(page.locator("#review_status")).to_contain_text(saved)
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()


def test_review_open_filter_fix_delete_relabel_accept_move_on_and_save(browser, review_app, tmp_path):
    url, folder = review_app
    labels = {p.name: p.read_bytes() for p in (folder / "labels").rglob("*.txt")}
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(url, wait_until="load")
    page.get_by_role("tab", name="Review").click()
    page.locator("#review_open").click()
    status, items, objects, hint = (page.locator(f"#review_{name}") for name in ("status", "items", "objects", "hint"))
    expect(status).to_contain_text("3 items listed")
    expect(items).to_contain_text("photo · 0 instances · nothing found")  # nothing found: the first to look at

    choose(page, "#review_filter_class", "green")
    expect(status).to_contain_text("1 item listed")
    page.locator("#review_items .thumbnail-item").first.click()
    expect(hint).to_contain_text("shot")
    expect(objects).to_contain_text("Instance 2 · green — as saved")

    page.locator("#review_objects label").nth(1).click()  # the green instance, then a click on it refines it
    click_image_pixel(page, "#review_canvas", *GREEN_DISC)
    expect(objects).to_contain_text("Instance 2 · green — edited")

    page.locator("#review_objects label").first.click()
    expect(hint).to_contain_text("instance 1 is active")  # the choice arrived before the key acts on it
    page.keyboard.press("d")  # delete the red one ...
    expect(objects).not_to_contain_text("Instance 2")
    page.keyboard.press("z")  # ... undo ...
    expect(objects).to_contain_text("Instance 2 · green — edited")
    page.locator("#review_objects label").first.click()
    page.locator("#review_delete").click()  # ... and delete it with the button
    expect(objects).to_contain_text("Instance 1 · green — edited")
    expect(objects).not_to_contain_text("Instance 2")

    choose(page, "#review_class", "red")  # the green disc is called red
    expect(objects).to_contain_text("Instance 1 · red — edited")
    page.keyboard.press("a")  # accept: the filtered list's last item
    expect(status).to_contain_text("The last item: accepted.")
    expect(items).to_contain_text("shot · 1 instance · reviewed, edited")

    choose(page, "#review_filter_class", "Any class")
    expect(status).to_contain_text("3 items listed")
    page.keyboard.press("ArrowLeft")  # reviewed items come last: the one before is pic
    expect(hint).to_contain_text("pic")
    expect(status).to_contain_text("item 2 of 3")
    save_and_close(page, "Saved: 1 reviewed, 1 edited", screenshot_path(tmp_path, "screenshot_review.png"))

    saved = open_dataset(folder)
    shot = saved.instances("shot")
    assert [a.class_name for a in shot] == ["red"] and saved.is_reviewed("shot") and saved.is_edited("shot")
    assert not saved.is_reviewed("pic") and not saved.is_edited("pic")
    after = {p.name: p.read_bytes() for p in (folder / "labels").rglob("*.txt")}
    assert after["shot.txt"] != labels["shot.txt"]
    assert {k: v for k, v in after.items() if k != "shot.txt"} == {k: v for k, v in labels.items() if k != "shot.txt"}


def test_hosted_upload_edit_accept_undo_across_items_and_save_as_a_download(browser, hosted_app, photos_run, tmp_path):
    upload = zip_dataset(photos_run, tmp_path / "photos_review.zip")  # what the Auto-annotate tab offers
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(hosted_app, wait_until="load")
    page.get_by_role("tab", name="Review").click()
    expect(page.locator("#review_open")).to_be_hidden()  # nothing to open on the server: upload
    page.locator("#review_upload input[type=file]").set_input_files(str(upload))
    status, items, objects, hint = (page.locator(f"#review_{name}") for name in ("status", "items", "objects", "hint"))
    expect(status).to_contain_text("photos_review")
    expect(status).to_contain_text("3 items listed")

    choose(page, "#review_order", "Dataset order")  # photo, pic, shot: the COCO file's order
    expect(items).to_contain_text("shot · 2 instances · to review")
    page.locator("#review_items .thumbnail-item").nth(1).click()
    expect(hint).to_contain_text("pic")
    page.keyboard.press("ArrowRight")
    expect(hint).to_contain_text("shot")
    expect(objects).to_contain_text("Instance 2 · green — as saved")
    page.locator("#review_objects label").first.click()
    page.keyboard.press("d")  # the red one deleted
    expect(objects).not_to_contain_text("Instance 2")
    page.keyboard.press("ArrowLeft")  # committed: the dataset's edit now
    expect(hint).to_contain_text("pic")
    page.keyboard.press("a")  # pic accepted, on to shot
    expect(hint).to_contain_text("shot")
    expect(items).to_contain_text("pic · 1 instance · reviewed")

    page.keyboard.press("z")  # nothing to undo on shot: the Accept of pic, shown
    expect(status).to_contain_text("Undone: Accept on pic.")
    expect(hint).to_contain_text("pic")
    expect(items).to_contain_text("pic · 1 instance · to review")
    page.keyboard.press("z")  # then the delete on shot
    expect(status).to_contain_text("Undone: a delete on shot.")
    expect(objects).to_contain_text("Instance 2 · green — as saved")
    page.locator("#review_objects label").first.click()
    page.locator("#review_delete").click()  # deleted again, with the button this time
    expect(objects).not_to_contain_text("Instance 2")
    settled(page, "#review_canvas")
    page.locator("#review_save").click()
    expect(status).to_contain_text("Saved: 0 reviewed, 1 edited")
    link = page.locator("#review_download a").first
    expect(link).to_have_attribute("href", re.compile(r"photos_review\.zip"))
    page.screenshot(path=str(tmp_path / "screenshot_review_hosted.png"), full_page=True)
    download = tmp_path / "download.zip"
    download.write_bytes(page.request.get(link.get_attribute("href")).body())
    page.close()

    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(download) as archive:
        archive.extractall(unpacked)
    saved = open_dataset(unpacked)  # the run's dataset still: labels, COCO and masks, saved in step
    assert saved.formats == ("yolo", "coco", "masks")
    shot, pic = "shot", "pic"
    assert [a.class_name for a in saved.instances(shot)] == ["green"] and saved.is_edited(shot)
    assert not saved.is_reviewed(shot) and not saved.is_reviewed(pic) and not saved.is_edited(pic)
    before = {p.relative_to(photos_run).as_posix(): p.read_bytes() for p in (photos_run / "labels").rglob("*.txt")}
    after = {p.relative_to(unpacked).as_posix(): p.read_bytes() for p in (unpacked / "labels").rglob("*.txt")}
    assert after.keys() == before.keys() and after["labels/shot.txt"] != before["labels/shot.txt"]
    assert {k: v for k, v in after.items() if k != "labels/shot.txt"} == {
        k: v for k, v in before.items() if k != "labels/shot.txt"
    }  # untouched items' labels, byte for byte
    coco = COCO(str(unpacked / "annotations.json"))  # the COCO file, as pycocotools reads it, has the edit too
    shot_id = next(image["id"] for image in coco.dataset["images"] if Path(image["file_name"]).stem == "shot")
    assert [coco.cats[a["category_id"]]["name"] for a in coco.loadAnns(coco.getAnnIds(imgIds=[shot_id]))] == ["green"]


def test_review_a_box_dragged_and_a_new_class_typed_on_a_missed_object(browser, review_app, tmp_path):
    """On the item with nothing found: a box dragged (a key pressed mid-drag does nothing; after it, keys work
    again), a click after it, a class the dataset lacks typed, accepted and saved in every format it holds."""
    url, folder = review_app
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(url, wait_until="load")
    page.get_by_role("tab", name="Review").click()
    page.locator("#review_open").click()
    status, objects, hint = (page.locator(f"#review_{name}") for name in ("status", "objects", "hint"))
    expect(status).to_contain_text("3 items listed")
    page.locator("#review_items .thumbnail-item").first.click()  # nothing found comes first
    expect(hint).to_contain_text("photo")
    expect(objects).to_contain_text("Instance 1 · red — new")

    page.locator("#review_mode").get_by_label("Box (drag)").check()
    expect(hint).to_contain_text("drag a box around it")
    canvas = "#review_box_canvas canvas"
    expect(page.locator(canvas).first).to_be_visible()
    idle(page)
    box = page.locator(canvas).first.bounding_box()
    start, end = ((box["x"] + box["width"] * fx, box["y"] + box["height"] * fy) for fx, fy in ((0.2, 0.25), (0.5, 0.6)))
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 20, start[1] + 20, steps=3)
    page.keyboard.press("n")  # mid-drag: not "next"
    page.mouse.move(*end, steps=5)
    page.mouse.up()
    expect(objects).to_contain_text("Instance 1 · red — edited")
    page.screenshot(path=str(screenshot_path(tmp_path, "screenshot_review_box.png")), full_page=True)
    page.keyboard.press("z")  # out of a drag the keys work: undo takes the box back ...
    expect(objects).to_contain_text("Instance 1 · red — new")
    idle(page)
    drag(page, canvas, (0.2, 0.25), (0.5, 0.6))  # ... and the next drag draws it again
    expect(objects).to_contain_text("Instance 1 · red — edited")
    expect(hint).to_contain_text("photo")
    expect(status).to_contain_text("item 1 of 3")

    page.locator("#review_mode").get_by_label("Negative click").check()  # a click after the drag still works
    before = picture_of(page, "#review_canvas")
    click_image_pixel(page, "#review_canvas", 110, 100)
    expect(page.locator("#review_canvas img").first).not_to_have_attribute("src", before)

    page.locator("#review_class input").first.fill("bicycle")  # a class the dataset does not have
    page.keyboard.press("Enter")
    expect(objects).to_contain_text("Instance 1 · bicycle — edited")
    page.locator("#review_steps").click()
    page.locator("#review_accept").click()
    expect(hint).not_to_contain_text("photo")
    choose(page, "#review_filter_class", "bicycle")  # committed: the class filter offers it at once
    expect(status).to_contain_text("1 item listed")
    save_and_close(page, "Saved:", screenshot_path(tmp_path, "screenshot_review_new_class.png"))

    saved = open_dataset(folder)
    assert [a.class_name for a in saved.instances("photo")] == ["bicycle"] and saved.is_reviewed("photo")
    assert "bicycle" in yaml.safe_load((folder / "data.yaml").read_text(encoding="utf-8"))["names"].values()
    coco = COCO(str(folder / "annotations.json"))
    (category,) = [c["id"] for c in coco.dataset["categories"] if c["name"] == "bicycle"]
    photo = next(i["id"] for i in coco.dataset["images"] if i["file_name"] == "photo.png")
    assert [a["category_id"] for a in coco.loadAnns(coco.getAnnIds(imgIds=photo))] == [category]


def test_after_the_last_instance_is_deleted_and_after_a_refusal_the_next_click_reaches_the_server(
    browser, hosted_app, photos_run, tmp_path
):
    """The loop, counted: each click after an empty editor or a refused name sends its request (queue/join) and
    changes what is shown."""
    upload = zip_dataset(photos_run, tmp_path / "photos_loop.zip")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    joins: list[str] = []
    page.on("request", lambda r: joins.append(r.url) if "queue/join" in r.url else None)
    page.goto(hosted_app, wait_until="load")
    page.get_by_role("tab", name="Review").click()
    page.locator("#review_upload input[type=file]").set_input_files(str(upload))
    status, objects, hint = (page.locator(f"#review_{name}") for name in ("status", "objects", "hint"))
    expect(status).to_contain_text("3 items listed")
    choose(page, "#review_order", "Dataset order")  # photo, pic, shot
    page.locator("#review_items .thumbnail-item").nth(1).click()
    expect(objects).to_contain_text("Instance 1 · red — as saved")
    page.locator("#review_objects label").first.click()
    expect(hint).to_contain_text("instance 1 is active")
    page.keyboard.press("d")  # pic's only instance: the editor is left with none
    expect(objects).not_to_contain_text("Instance 1")
    settled(page, "#review_canvas")
    before, picture = len(joins), picture_of(page, "#review_canvas")
    click_image_pixel(page, "#review_canvas", 90, 90)
    expect(objects).to_contain_text("Instance 1 · no class — edited")
    assert len(joins) == before + 1 and picture_of(page, "#review_canvas") != picture

    class_box = page.locator("#review_class input").first
    class_box.fill("Red")  # the dataset has "red": refused, nothing changes
    class_box.press("Enter")
    expect(page.locator(".toast-body, [data-testid='toast-body']").first).to_contain_text("only in case")
    page.locator("#review_steps").click()
    settled(page, "#review_canvas")
    before, picture = len(joins), picture_of(page, "#review_canvas")
    click_image_pixel(page, "#review_canvas", 60, 60)
    expect(page.locator("#review_canvas img").first).not_to_have_attribute("src", picture)
    assert len(joins) == before + 1
    page.screenshot(path=str(tmp_path / "screenshot_review_loop.png"), full_page=True)
    page.close()
