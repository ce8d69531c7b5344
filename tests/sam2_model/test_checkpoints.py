"""Model loading: names, Meta's files, recognition by weights, and the errors a user gets."""

from __future__ import annotations

import shutil

import pytest
import torch

from sam2_model import MODEL_ZOO, Sam2Model, load_model
from sam2_model.checkpoints import ModelSpec, read_state_dict, resolve_checkpoint, spec_from_state_dict
from sam2_model.devices import select_device


@pytest.mark.parametrize(
    ("name", "size", "version"),
    [
        ("sam2.1_t.pt", "t", "2.1"),
        ("sam2.1_b.pt", "b", "2.1"),
        ("sam2_l.pt", "l", "2"),
        ("sam2.1_hiera_tiny.pt", "t", "2.1"),
        ("sam2.1_hiera_base_plus.pt", "b", "2.1"),
        ("sam2_hiera_small.pt", "s", "2"),
        ("sam2_hiera_large.pt", "l", "2"),
    ],
)
def test_known_names_map_to_architectures(name, size, version):
    spec = MODEL_ZOO[name]
    assert (spec.size, spec.version) == (size, version)
    assert name in {spec.asset_name, spec.meta_name}
    assert spec.meta_url.endswith("/" + spec.meta_name)


@pytest.mark.parametrize("which", ["meta", "ultralytics", "renamed"])
def test_checkpoint_files_load_under_any_name(checkpoints, which):
    path = getattr(checkpoints, which)
    model = load_model(path, device="cpu")
    assert isinstance(model, Sam2Model)
    assert (model.spec.size, model.spec.version) == ("t", "2.1")
    assert model.source == str(path)
    reference = torch.load(checkpoints.meta, weights_only=True)["model"]
    loaded = model.net.state_dict()
    assert torch.equal(loaded["sam_mask_decoder.iou_token.weight"], reference["sam_mask_decoder.iou_token.weight"])
    assert torch.equal(loaded["no_obj_embed_spatial"], reference["no_obj_embed_spatial"])


def test_load_model_loads_once_per_process(checkpoints):
    first = load_model(checkpoints.meta, device="cpu")
    assert load_model(str(checkpoints.meta), device="cpu") is first
    assert load_model(first) is first  # an already loaded model passes through


def test_sam2_0_weights_are_recognised(tmp_path):
    net = ModelSpec("t", "2").build_untrained()
    path = tmp_path / "custom.pt"
    torch.save(net.state_dict(), path)  # a bare state dict works too
    spec = spec_from_state_dict(read_state_dict(path))
    assert (spec.size, spec.version) == ("t", "2")
    assert load_model(path, device="cpu").spec == spec


def test_our_sam2_1_network_matches_ultralytics_sam2_1_build(checkpoints, tmp_path):
    """ultralytics builds SAM 2.1 only for files named *sam2.1*; ours must have exactly the same parameters."""
    from ultralytics.models.sam.build import build_sam2_t

    theirs = build_sam2_t(str(checkpoints.ultralytics)).state_dict()
    ours = ModelSpec("t", "2.1").build_untrained().state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def test_untrained_only_when_asked():
    model = load_model("sam2.1_t.pt", device="cpu", untrained=True)
    assert model.source == "untrained"
    assert model.spec == ModelSpec("t", "2.1")
    with pytest.raises(ValueError, match="known model name"):
        load_model("whatever.pt", untrained=True)


def test_offline_download_fails_fast_with_the_fix(isolated_weights_dir):
    # A known name that is not on disk: the download fails (no network in tests) and the error says what to do.
    with pytest.raises(ConnectionError) as error:
        load_model("sam2.1_t.pt", device="cpu")
    message = str(error.value)
    assert "sam2.1_t.pt" in message
    assert "https://github.com/ultralytics/assets/releases/download/" in message
    assert "--model /path/to/sam2.1_t.pt" in message
    assert not any(isolated_weights_dir.iterdir()), "a failed download must not leave a partial file"


def test_a_failed_download_names_its_cause(isolated_weights_dir, monkeypatch):
    import ultralytics.utils.downloads

    def denied(file, repo="ultralytics/assets", release="v8.3.0", **kwargs):
        raise PermissionError(13, "Permission denied: '/weights/sam2.1_t.pt'")

    monkeypatch.setattr(ultralytics.utils.downloads, "attempt_download_asset", denied)
    with pytest.raises(ConnectionError) as error:
        resolve_checkpoint("sam2.1_t.pt")
    message = str(error.value)
    assert "PermissionError: [Errno 13] Permission denied" in message and "offline" not in message
    assert "--model /path/to/sam2.1_t.pt" in message


def test_a_failed_download_leaves_no_empty_folder(tmp_path, monkeypatch):
    from sam2_model import checkpoints

    monkeypatch.setattr(checkpoints, "weights_dir", lambda: tmp_path / "weights" / "sam2")
    with pytest.raises(ConnectionError):
        resolve_checkpoint("sam2.1_t.pt")
    assert list(tmp_path.iterdir()) == []


def test_offline_download_of_meta_name_names_meta_url():
    with pytest.raises(ConnectionError, match=r"dl\.fbaipublicfiles\.com/segment_anything_2/092824/sam2\.1_hiera_tiny"):
        resolve_checkpoint("sam2.1_hiera_tiny.pt")


def test_checkpoint_in_weights_dir_is_found_without_download(checkpoints, isolated_weights_dir):
    target = isolated_weights_dir / "sam2.1_s.pt"
    shutil.copy(checkpoints.meta, target)
    try:
        assert resolve_checkpoint("sam2.1_s.pt") == target
    finally:
        target.unlink()


@pytest.mark.parametrize(
    ("model", "error", "match"),
    [
        ("sam3_giant.pt", FileNotFoundError, "Checkpoint file not found"),
        ("not_a_model", ValueError, "Unknown SAM 2 model 'not_a_model'"),
        ("/no/such/dir/sam2.1_b.pt", FileNotFoundError, r"/no/such/dir/sam2\.1_b\.pt"),
    ],
)
def test_bad_names_and_paths(model, error, match):
    with pytest.raises(error, match=match):
        load_model(model, device="cpu")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        load_model(tmp_path, device="cpu")


def test_truncated_checkpoint(checkpoints, tmp_path):
    data = checkpoints.meta.read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_model(path, device="cpu")


def test_empty_checkpoint(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_model(path, device="cpu")


def test_pickled_model_file_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "yolo_like.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, path)  # full modules pickled, as YOLO .pt files hold
    with pytest.raises(ValueError, match="not a SAM 2 checkpoint"):
        load_model(path, device="cpu")


def test_weights_of_another_architecture(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save({"model": {"conv1.weight": torch.zeros(4, 3, 3, 3), "fc.bias": torch.zeros(2)}}, path)
    with pytest.raises(ValueError, match=r"another architecture.*conv1\.weight"):
        load_model(path, device="cpu")


def test_incomplete_checkpoint_names_missing_keys(checkpoints, tmp_path):
    state = torch.load(checkpoints.meta, weights_only=True)["model"]
    del state["sam_mask_decoder.iou_prediction_head.layers.0.weight"]
    path = tmp_path / "incomplete.pt"
    torch.save({"model": state}, path)
    with pytest.raises(ValueError, match=r"missing keys \['sam_mask_decoder.iou_prediction_head.layers.0.weight'\]"):
        load_model(path, device="cpu")


def test_device_selection():
    assert select_device(None).type in {"cpu", "cuda", "mps"}
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="Unknown device"):
        select_device("tpu-9000")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device cpu"):
            select_device("cuda")
