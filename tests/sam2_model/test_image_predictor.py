"""ImagePredictor: Meta's contract (shapes, dtypes, errors), the embedding cache, batching and thread safety."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from PIL import Image

from sam2_model import ImagePredictor, Sam2Model
from sam2_model import image_predictor as image_predictor_module
from tests.devices import device_under_test, logit_atol

LOGIT_ATOL = logit_atol(device_under_test())  # 1e-4 in float32 on the CPU; bf16 on CUDA (tests/devices.py)


@pytest.fixture(scope="module")
def predictor(tiny_model, scene_image) -> ImagePredictor:
    predictor = ImagePredictor(tiny_model)
    predictor.set_image(scene_image)
    return predictor


def fresh_model(tiny_model: Sam2Model, cache_bytes: int) -> Sam2Model:
    """The session's network behind a new cache, so cache tests see only their own images."""
    return Sam2Model(tiny_model.net, tiny_model.spec, tiny_model.device, "test", embedding_cache_bytes=cache_bytes)


def test_click_returns_three_masks_at_image_size(predictor, scene_image):
    masks, scores, low_res = predictor.predict(point_coords=np.array([[80, 90]]), point_labels=np.array([1]))
    h, w = scene_image.shape[:2]
    assert masks.shape == (3, h, w) and masks.dtype == np.float32
    assert set(np.unique(masks)) <= {0.0, 1.0}
    assert scores.shape == (3,) and scores.dtype == np.float32
    assert low_res.shape == (3, 256, 256) and low_res.dtype == np.float32
    assert low_res.min() >= -32 and low_res.max() <= 32


def test_single_mask_and_logits(predictor):
    logits, scores, _ = predictor.predict(
        point_coords=[[80, 90], [200, 30]], point_labels=[1, 0], multimask_output=False, return_logits=True
    )
    masks, _, _ = predictor.predict(point_coords=[[80, 90], [200, 30]], point_labels=[1, 0], multimask_output=False)
    assert logits.shape[0] == 1 and scores.shape == (1,)
    np.testing.assert_array_equal(masks, (logits > 0).astype(np.float32))


def test_several_boxes_give_one_mask_set_each(predictor, scene_image):
    boxes = np.array([[30, 40, 150, 140], [180, 110, 280, 210], [0, 0, 50, 50]])
    masks, scores, low_res = predictor.predict(box=boxes, multimask_output=False)
    assert masks.shape == (3, 1, *scene_image.shape[:2])
    assert scores.shape == (3, 1) and low_res.shape == (3, 1, 256, 256)


def test_chunked_decoding_matches_one_call(predictor, monkeypatch):
    boxes = np.array([[30, 40, 150, 140], [180, 110, 280, 210], [0, 0, 50, 50], [10, 20, 300, 220], [5, 5, 9, 9]])
    whole = predictor.predict(box=boxes, return_logits=True)
    from sam2_model.chunk_sizes import ChunkSizes

    monkeypatch.setattr(image_predictor_module, "chunk_sizes", lambda device: ChunkSizes(2, 2**20))
    chunked = predictor.predict(box=boxes, return_logits=True)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(a, b, atol=LOGIT_ATOL)


def test_normalized_coordinates_match_pixels(predictor, scene_image):
    h, w = scene_image.shape[:2]
    in_pixels = predictor.predict(point_coords=[[80, 90]], point_labels=[1], return_logits=True)
    normalized = predictor.predict(
        point_coords=[[80 / w, 90 / h]], point_labels=[1], return_logits=True, normalize_coords=False
    )
    np.testing.assert_allclose(in_pixels[0], normalized[0], atol=LOGIT_ATOL)


def test_mask_input_refines(predictor):
    _, _, low_res = predictor.predict(point_coords=[[80, 90]], point_labels=[1], multimask_output=False)
    masks, scores, _ = predictor.predict(
        point_coords=[[80, 90]], point_labels=[1], mask_input=low_res, multimask_output=False
    )
    assert masks.shape[0] == 1 and scores.shape == (1,)


def test_predict_before_set_image(tiny_model):
    with pytest.raises(RuntimeError, match=r"set_image"):
        ImagePredictor(tiny_model).predict(point_coords=[[1, 1]], point_labels=[1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"point_coords": [[1, 2], [3, 4]], "point_labels": [1]}, r"shape \(2, 2\).*shape \(1,\)"),
        ({"point_coords": [[1, 2]]}, "go together"),
        ({"point_coords": [[np.nan, 2]], "point_labels": [1]}, "NaN"),
        ({"point_coords": [1, 2, 3], "point_labels": [1]}, "Nx2"),
        ({"point_coords": [[1, 2]], "point_labels": [7]}, "1 \\(foreground\\) or 0"),
        ({"box": [1, 2, 3]}, "xyxy"),
        ({"box": [0, 0, np.inf, 5]}, "NaN or infinite"),
        ({"mask_input": np.zeros((1, 64, 64))}, "1x256x256"),
        ({"box": [[0, 0, 5, 5], [1, 1, 6, 6]], "point_coords": [[[1, 1]]] * 3, "point_labels": [[1]] * 3}, "objects"),
    ],
)
def test_bad_prompts_raise_value_error(predictor, kwargs, match):
    with pytest.raises(ValueError, match=match):
        predictor.predict(**kwargs)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((0, 10, 3), dtype=np.uint8), "empty"),
        (np.zeros((10, 10, 3), dtype=np.float32), "uint8"),
        (np.zeros((10, 10, 5), dtype=np.uint8), "shape"),
        ("image.png", "numpy array or a PIL image"),
    ],
)
def test_bad_images_raise_value_error(tiny_model, image, match):
    with pytest.raises(ValueError, match=match):
        ImagePredictor(tiny_model).set_image(image)


def test_gray_rgba_and_pil_images_are_converted(tiny_model, scene_image):
    model = fresh_model(tiny_model, cache_bytes=10**9)
    predictor = ImagePredictor(model)
    predictor.set_image(Image.fromarray(scene_image))  # PIL RGB: same pixels as the array
    predictor.set_image(np.dstack([scene_image, np.full(scene_image.shape[:2], 255, np.uint8)]))  # RGBA
    assert model.embedding_cache.hits == 1 and len(model.embedding_cache) == 1
    predictor.set_image(scene_image[:, :, 0])  # grayscale
    assert predictor.orig_hw == [scene_image.shape[:2]]
    masks, _, _ = predictor.predict(point_coords=[[5, 5]], point_labels=[1])
    assert masks.shape[1:] == scene_image.shape[:2]


def test_embedding_cache_reuses_same_pixels_and_is_bounded(tiny_model, scene_image, monkeypatch):
    encoded: list[int] = []
    real_encode = image_predictor_module.encode_images

    def counting_encode(model, images):
        encoded.append(len(images))
        return real_encode(model, images)

    monkeypatch.setattr(image_predictor_module, "encode_images", counting_encode)
    one_image_bytes = 256 * 64 * 64 * 4 + 32 * 256 * 256 * 4 + 64 * 128 * 128 * 4
    model = fresh_model(tiny_model, cache_bytes=one_image_bytes)  # room for exactly one image
    predictor = ImagePredictor(model)
    predictor.set_image(scene_image)
    predictor.set_image(scene_image.copy())  # another array, same pixels: cached
    assert encoded == [1] and model.embedding_cache.hits == 1
    assert model.embedding_cache.nbytes == one_image_bytes

    other = scene_image.copy()
    other[0, 0, 0] ^= 1  # one pixel differs: a different image
    predictor.set_image(other)
    assert encoded == [1, 1]
    assert len(model.embedding_cache) == 1 and model.embedding_cache.nbytes <= one_image_bytes  # evicted the first
    predictor.set_image(scene_image)
    assert encoded == [1, 1, 1]


def test_batch_api(tiny_model, scene_image):
    model = fresh_model(tiny_model, cache_bytes=10**9)
    predictor = ImagePredictor(model)
    small = scene_image[:100, :150].copy()
    predictor.set_image_batch([scene_image, small])
    masks, scores, _ = predictor.predict_batch(
        point_coords_batch=[np.array([[10, 10]]), None],
        point_labels_batch=[np.array([1]), None],
        box_batch=[None, np.array([5, 5, 60, 60])],
        multimask_output=False,
    )
    assert [m.shape for m in masks] == [(1, 240, 320), (1, 100, 150)]
    assert [s.shape for s in scores] == [(1,), (1,)]
    with pytest.raises(RuntimeError, match="predict_batch"):
        predictor.predict(point_coords=[[1, 1]], point_labels=[1])
    with pytest.raises(RuntimeError, match="predict_batch"):
        predictor.predict_low_res(point_coords=[[1, 1]], point_labels=[1])
    with pytest.raises(ValueError, match="one per image"):
        predictor.predict_batch(box_batch=[None])

    # The batch encoding equals one-by-one encoding, and filled the cache for later single images.
    single = ImagePredictor(model)
    single.set_image(small)
    assert model.embedding_cache.hits == 1
    alone = single.predict(box=np.array([5, 5, 60, 60]), multimask_output=False, return_logits=True)
    predictor.set_image_batch([scene_image, small])
    batched = predictor.predict_batch(
        box_batch=[None, np.array([5, 5, 60, 60])], multimask_output=False, return_logits=True
    )
    np.testing.assert_allclose(batched[0][1], alone[0], atol=LOGIT_ATOL)
    with pytest.raises(RuntimeError, match="set_image_batch"):
        single.predict_batch()


def test_predictors_share_one_model_across_threads(tiny_model, predictor, scene_image):
    """Several users' predictors on one model, predicting at once, get what they would get alone."""
    prompts = [[[40 + 30 * i, 60 + 20 * i]] for i in range(4)]
    expected = [predictor.predict(point_coords=p, point_labels=[1], return_logits=True)[0] for p in prompts]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def user(i: int) -> None:
        try:
            own = ImagePredictor(tiny_model)
            own.set_image(scene_image)  # cached: same pixels as the module predictor
            for _ in range(3):
                results[i] = own.predict(point_coords=prompts[i], point_labels=[1], return_logits=True)[0]
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for i in range(4):
        np.testing.assert_allclose(results[i], expected[i], atol=LOGIT_ATOL)


def test_prompts_entirely_off_the_image_warn(tiny_model, scene_image):
    predictor = ImagePredictor(tiny_model)
    predictor.set_image(scene_image)  # 320x240
    with pytest.warns(UserWarning, match=r"Every point lies outside the 320x240 image"):
        predictor.predict(point_coords=[[500, 375]], point_labels=[1])
    with pytest.warns(UserWarning, match=r"A box lies entirely outside the 320x240 image"):
        predictor.predict(box=[400, 10, 500, 100])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # on the image, or partly: no warning
        predictor.predict(point_coords=[[500, 375], [10, 10]], point_labels=[1, 0])
        predictor.predict(box=[300, 200, 400, 300])
        predictor.predict(point_coords=[[0.5, 0.5]], point_labels=[1], normalize_coords=False)


def test_read_only_arrays_are_taken_without_warnings(tiny_model, scene_image):
    frozen = np.asarray(Image.fromarray(scene_image[::-1].copy()))  # PIL's buffer: read-only
    assert not frozen.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ImagePredictor(tiny_model).set_image(frozen)
