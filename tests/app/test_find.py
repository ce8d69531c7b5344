"""Find by name and Find similar (app.find_workflow), on an untrained YOLOE built from its yaml with test-made text
embeddings (the recipe of tests/annotate/test_text_prompts.py) and untrained SAM 2: the whole path offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.detector_pool import DetectorPool
from app.find_workflow import FindWorkflow
from app.image_workflow import ImageWorkflow, room
from app.prompts import MAX_PHRASES, PromptError, parse_phrases
from app.refusals import Refusal
from app.services import Services
from app.sessions import ImageObject, ImageState
from app.settings import Limits

NOISE = np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)  # untrained YOLOE finds boxes on
# noise (on flat pictures it scores ~0)


def untrained(name: str):
    """An untrained YOLOE or YOLO-World from the yaml ultralytics ships (no download), the same weights every time."""
    from ultralytics import YOLOE, YOLOWorld

    threads = torch.get_num_threads()
    with torch.random.fork_rng():
        torch.manual_seed(1)  # weights that give boxes on noise
        model = YOLOE("yoloe-11s-seg.yaml") if name.startswith("yoloe") else YOLOWorld("yolov8s-worldv2.yaml")
    torch.set_num_threads(threads)
    return model


def embeddings_file(path, names, dim=512):
    """What save_text_embeddings writes, with random embeddings (the text encoder cannot be downloaded here)."""
    rng = np.random.default_rng(0)
    np.savez(path, names=np.array(names), embeddings=rng.normal(size=(1, len(names), dim)).astype(np.float32))
    return path


def yoloe_pool(folder, names=("person", "red car")) -> DetectorPool:
    """A finders pool of one untrained YOLOE with embeddings of `names` written into `folder`."""
    npz = embeddings_file(folder / "names.npz", list(names))
    yoloe = untrained("yoloe-11s-seg.pt")
    return DetectorPool(["yoloe-11s-seg.pt"], loader=lambda name: yoloe, text_embeddings=npz)


@pytest.fixture(scope="module")
def yoloe():
    return untrained("yoloe-11s-seg.pt")


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return embeddings_file(tmp_path_factory.mktemp("find") / "names.npz", ["person", "red car", "dog"])


def make_services(small_model, yoloe, npz=None, max_objects=6, names=("yoloe-11s-seg.pt",)) -> Services:
    loaded = {"yoloe-11s-seg.pt": yoloe}
    finders = DetectorPool(list(names), loader=lambda name: loaded.get(name) or untrained(name), text_embeddings=npz)
    return Services(small_model, Limits(max_objects=max_objects), finders=finders)


@pytest.fixture
def services(small_model, yoloe, npz) -> Services:
    return make_services(small_model, yoloe, npz)


def noise_state() -> ImageState:
    return ImageState(image=NOISE, preview=NOISE, objects=[ImageObject()])


# ------------------------------------------------------------------------------------------------ phrases
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("person, red car", ["person", "red car"]),
        ("  person ,, Person,\n red   car ", ["person", "red car"]),  # trimmed, collapsed, repeats dropped
        (", ".join(f"n{i}" for i in range(MAX_PHRASES)), [f"n{i}" for i in range(MAX_PHRASES)]),
        ("", "Type what to find"),
        (None, "Type what to find"),
        (" , ,", "Type what to find"),
        (3, "got int"),
        (", ".join(f"n{i}" for i in range(MAX_PHRASES + 1)), f"at most {MAX_PHRASES} at once"),
        ("x" * 65, "at most 64"),
        ("x," * 2000, "at most 16 names of at most 64 characters"),  # bounded before it is split
    ],
)
def test_phrases_are_split_trimmed_and_bounded(text, expected):
    if isinstance(expected, list):
        assert parse_phrases(text) == expected
    else:
        with pytest.raises(PromptError, match=expected):
            parse_phrases(text)


# ---------------------------------------------------------------------------------------------- find by name
def test_find_names_objects_after_their_phrase_with_scores_and_per_box_masks(services):
    find, state = FindWorkflow(services), noise_state()
    count = find.find(state, "person, red car", confidence=0.0)
    assert 0 < count <= 6 and len(state.objects) == count and not state.hidden  # at most max_objects
    for obj in state.objects:
        assert obj.class_name in ("person", "red car") and obj.confidence is not None
        assert obj.mask is not None and obj.mask.shape == NOISE.shape[:2] and obj.mask.dtype == bool
        assert len(obj.scores) == 1 and obj.box is not None and len(obj.box) == 4
    confidences = [o.confidence for o in state.objects]
    assert confidences == sorted(confidences, reverse=True)  # best first
    # the batched call gives each box the mask one call per box gives (up to logits within ~1e-6 of 0)
    for obj in state.objects[:2]:
        alone, _ = services.gpu.segment_image(NOISE, None, None, None, np.array(obj.box, np.float32), False)
        assert np.mean(alone[0] != obj.mask) < 1e-3


def test_the_threshold_filters_found_objects_without_a_model_call(services, monkeypatch):
    find, state = FindWorkflow(services), noise_state()
    state.objects = [ImageObject(points=[(5.0, 5.0, 1)], candidates=np.ones((1, 240, 320), bool), scores=[0.5])]
    find.find(state, "person", confidence=0.0)
    found = state.objects[1:]
    assert len(found) >= 3
    for obj, score in zip(found, (0.9, 0.6, 0.3), strict=False):
        obj.confidence = score  # untrained scores are all alike: give them ones to tell apart
    for obj in found[3:]:
        obj.confidence = 0.1

    def no_model(*_args, **_kwargs):
        raise AssertionError("the threshold called the model")

    monkeypatch.setattr(find.tasks, "find_objects", no_model)
    monkeypatch.setattr(services.gpu, "segment_image", no_model)
    find.set_threshold(state, 0.5)
    assert [o.confidence for o in state.objects] == [None, 0.9, 0.6]  # the clicked object always stays
    assert sorted(o.confidence for o in state.hidden) == sorted([0.3] + [0.1] * (len(found) - 3))
    find.set_threshold(state, 0.2)
    assert [o.confidence for o in state.objects] == [None, 0.9, 0.6, 0.3] and state.min_confidence == 0.2
    find.set_threshold(state, 0.0)
    assert len(state.objects) == 1 + len(found) and not state.hidden
    with pytest.raises(Refusal, match="from 0 to 1"):
        find.set_threshold(state, 1.5)


def test_hidden_objects_are_not_exported_and_undo_takes_found_objects_back(services, tmp_path):
    import json

    find, image, state = FindWorkflow(services), ImageWorkflow(services), noise_state()
    find.find(state, "dog", confidence=0.0)
    state.objects[0].confidence = 0.9  # the others stay at the untrained ~0.0002
    find.set_threshold(state, 0.5)
    assert len(state.objects) == 1 and state.hidden
    files = image.export(state, tmp_path)
    coco = json.loads(next(p for p in files if p.suffix == ".json").read_text())
    assert len(coco["annotations"]) == 1 and [c["name"] for c in coco["categories"]] == ["dog"]
    image.undo(state)
    assert not state.hidden and all(o.confidence is None for o in state.objects)


def test_text_embeddings_are_cached_per_phrase_list(services, monkeypatch):
    import app.find_workflow as module

    calls = []
    real = module.load_text_embeddings
    monkeypatch.setattr(module, "load_text_embeddings", lambda *a: calls.append(a[1]) or real(*a))
    find = FindWorkflow(services)
    with services.finders.borrow("yoloe-11s-seg.pt") as finder:
        first = find.embeddings("yoloe-11s-seg.pt", finder, ["person", "dog"])
        again = find.embeddings("yoloe-11s-seg.pt", finder, ["person", "dog"])
        other = find.embeddings("yoloe-11s-seg.pt", finder, ["dog"])
    assert calls == [["person", "dog"], ["dog"]] and again is first and first.shape == (1, 2, 512)
    assert torch.equal(other[0, 0], first[0, 1])


def test_without_the_text_encoder_the_refusal_names_the_file_and_the_fixes(small_model, yoloe, tmp_path):
    lacking = embeddings_file(tmp_path / "names.npz", ["person"])
    for npz, also in ((None, ""), (lacking, "names.npz has no embedding")):
        find, state = FindWorkflow(make_services(small_model, untrained("yoloe"), npz)), noise_state()
        with pytest.raises(Refusal) as refused:
            find.find(state, "forklift", confidence=0.0)
        message = str(refused.value)
        assert "mobileclip_blt.ts" in message and "--text-embeddings" in message and "Find similar" in message
        assert also in message and len(state.objects) == 1  # nothing changed


def test_find_respects_the_object_limit(small_model, yoloe, npz):
    services = make_services(small_model, yoloe, npz, max_objects=3)
    find, state = FindWorkflow(services), noise_state()
    assert find.find(state, "person", confidence=0.0) == 3
    with pytest.raises(Refusal, match="at most 3 objects"):
        find.find(state, "dog", confidence=0.0)
    with pytest.raises(Refusal, match="Unknown detector"):
        find.find(state, "dog", detector="yolo11n.pt")
    with pytest.raises(Refusal, match="Upload an image"):
        find.find(ImageState(), "dog")


def test_hidden_found_objects_count_against_the_object_limit(small_model):
    """One limit for every way objects arrive: found objects the slider hides count (lowering it brings them
    back), an empty object does not; Add object is refused when the limit is taken, whatever took it."""
    mask = np.ones((1, 240, 320), bool)
    state = noise_state()
    state.objects = [ImageObject(candidates=mask), ImageObject()]
    state.hidden = [ImageObject(candidates=mask, confidence=0.1), ImageObject(candidates=mask, confidence=0.2)]
    assert room(state, 5) == 2 and room(state, 3) == 0 and room(state, 2) == 0
    images = ImageWorkflow(Services(small_model, Limits(max_objects=3)))
    with pytest.raises(Refusal, match="hidden found ones count"):
        images.add_object(state)
    assert len(state.objects) == 2  # nothing added
    state.hidden = state.hidden[:1]
    images.add_object(state)
    assert len(state.objects) == 3 and state.active == 2


# ------------------------------------------------------------------------------------------------- find similar
def test_find_similar_finds_others_like_the_boxed_example(services):
    find, state = FindWorkflow(services), noise_state()
    with pytest.raises(Refusal, match="draw a box around one example"):
        find.find_similar(state, confidence=0.0)
    example = [40.0, 40.0, 200.0, 180.0]
    state.objects = [ImageObject(box=example, candidates=np.ones((1, 240, 320), bool), scores=[0.5], class_name="ox")]
    count = find.find_similar(state, confidence=0.0)
    assert 0 < count <= 5 and len(state.objects) == 1 + count  # room: 6 objects, the example is one
    assert state.objects[0].box == example and {o.class_name for o in state.objects[1:]} == {"ox"}
    assert all(o.mask is not None and o.mask.shape == (240, 320) for o in state.objects)
    assert all(o.confidence is not None for o in state.objects[1:])


def test_find_similar_needs_yoloe(small_model, yoloe, npz):
    services = make_services(small_model, yoloe, npz, names=("yoloe-11s-seg.pt", "yolov8s-worldv2.pt"))
    find, state = FindWorkflow(services), noise_state()
    state.objects = [ImageObject(box=[40.0, 40.0, 200.0, 180.0])]
    with pytest.raises(Refusal, match="needs a YOLOE detector"):
        find.find_similar(state, detector="yolov8s-worldv2.pt", confidence=0.0)
    # YOLO-World finds by name from the same embeddings file
    assert find.find(state, "person", detector="yolov8s-worldv2.pt", confidence=0.0) > 0


def test_find_runs_as_a_zerogpu_task(small_model, yoloe, npz, zerogpu):
    """Under the ZeroGPU stand-in (a forked worker, everything pickled): the detector, the embeddings and the found
    masks cross; the image's embedding comes with the state, as for clicks."""
    from app.gpu import GpuRunner

    finders = DetectorPool(["yoloe-11s-seg.pt"], loader=lambda name: yoloe, text_embeddings=npz)
    services = Services(small_model, Limits(max_objects=3), runner=GpuRunner(zerogpu, isolated=True), finders=finders)
    find, state = FindWorkflow(services), noise_state()
    state.features = services.gpu.embed_image(NOISE)
    assert find.find(state, "person", confidence=0.0) == 3
    assert [c.task for c in zerogpu.calls] == ["embed_image", "find_objects"]
    assert all(o.mask is not None and o.mask.shape == (240, 320) for o in state.objects)


def test_hidden_found_objects_count_against_the_limit_of_segment_everything(small_model, yoloe, npz, monkeypatch):
    services = make_services(small_model, yoloe, npz, max_objects=4)
    find, state = FindWorkflow(services), noise_state()
    find.find(state, "person", confidence=0.0)
    find.set_threshold(state, 0.5)  # all four hidden (untrained scores ~0.0002)
    assert len(state.hidden) == 4
    record = {"segmentation": np.ones((240, 320), bool), "area": 1, "predicted_iou": 0.9, "point_coords": [[1, 1]]}
    monkeypatch.setattr(services.gpu, "segment_everything", lambda *a: iter([[record, record]]))  # SAM 2's records
    assert ImageWorkflow(services).segment_everything(state, lambda *a, **k: None) == 0  # no room while they wait
    find.set_threshold(state, 0.0)
    assert len(state.objects) == 4
