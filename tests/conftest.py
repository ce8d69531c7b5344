"""Shared fixtures: untrained SAM 2.1 tiny checkpoints saved like the real ones, an untrained YOLO, and a network guard.

No test reaches the network: any connection to a non-loopback address fails the test that made it. The models run on
`SAM2_TEST_DEVICE` (default cpu; `tests/devices.py`).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

# Before ultralytics and gradio are imported: no online checks, no telemetry.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from tests.devices import device_under_test

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
_blocked: list[str] = []
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_loopback(host: object) -> bool:
    if isinstance(host, str) and host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        _blocked.append(f"connect to {address!r}")
        raise OSError(f"tests may not reach the network (tried {address!r})")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        _blocked.append(f"connect_ex to {address!r}")
        raise OSError(f"tests may not reach the network (tried {address!r})")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):
    # Name lookups are not connections, but answer them as an offline machine would, at once.
    if host is not None and not _is_loopback(host if isinstance(host, str) else host.decode()):
        raise socket.gaierror(socket.EAI_NONAME, f"offline test run: no lookup of {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect
socket.socket.connect_ex = _guarded_connect_ex
socket.getaddrinfo = _guarded_getaddrinfo


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Leave the run's peak GPU memory (MiB) where bench/gpu_check.py asked for it (SAM2_GPU_PEAK_FILE), for its
    table; nothing when unset or when no GPU was used."""
    target = os.environ.get("SAM2_GPU_PEAK_FILE")
    if target and torch.cuda.is_available() and torch.cuda.is_initialized():
        Path(target).write_text(f"{torch.cuda.max_memory_allocated() / 2**20:.1f}")


@pytest.fixture(autouse=True)
def no_network():
    """Fail any test that tried to connect to a non-loopback address, even if the code swallowed the error."""
    start = len(_blocked)
    yield
    attempts = _blocked[start:]
    if attempts:
        pytest.fail(f"the test tried to reach the network: {attempts}")


@pytest.fixture(autouse=True, scope="session")
def isolated_weights_dir(tmp_path_factory):
    """Point our weights folder at an empty temp dir, so no test sees or writes real downloads.

    Patched on our side rather than in ultralytics' SETTINGS, which would persist the change to the user's settings.
    """
    from sam2_model import checkpoints

    folder = tmp_path_factory.mktemp("weights")
    patch = pytest.MonkeyPatch()
    patch.setattr(checkpoints, "weights_dir", lambda: folder)
    yield folder
    patch.undo()


@dataclass(frozen=True)
class Checkpoints:
    """Untrained SAM 2.1 tiny weights saved as real checkpoints are: ``{"model": state_dict}``."""

    meta: Path  # Meta's file name: sam2.1_hiera_tiny.pt
    ultralytics: Path  # ultralytics' asset name: sam2.1_t.pt
    renamed: Path  # any other name: recognised by its weights


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> Checkpoints:
    from sam2_model.checkpoints import ModelSpec

    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    net = ModelSpec("t", "2.1").build_untrained()
    meta = folder / "sam2.1_hiera_tiny.pt"
    torch.save({"model": net.state_dict()}, meta)
    ultralytics_file = folder / "sam2.1_t.pt"
    shutil.copy(meta, ultralytics_file)
    renamed = folder / "my_finetune.pt"
    shutil.copy(meta, renamed)
    return Checkpoints(meta=meta, ultralytics=ultralytics_file, renamed=renamed)


@pytest.fixture(scope="session")
def test_device() -> torch.device:
    """Where the models of the model tests run: SAM2_TEST_DEVICE (default cpu)."""
    return device_under_test()


@pytest.fixture(scope="session")
def tiny_model(checkpoints, test_device):
    """The shared untrained SAM 2.1 tiny model on the test device (loaded once for the session)."""
    from sam2_model import load_model

    return load_model(checkpoints.meta, device=test_device)


@pytest.fixture(scope="session")
def small_model(test_device):
    """An untrained SAM 2.1 tiny at a 256-pixel input on the test device: the same code paths as 1024, ~16x cheaper
    per image."""
    from sam2_model import Sam2Model
    from sam2_model.checkpoints import ModelSpec

    torch.manual_seed(0)
    spec = ModelSpec("t", "2.1")
    net = spec.build_untrained()
    net.set_imgsz((256, 256))
    return Sam2Model(net, spec, test_device, "untrained-256")


@pytest.fixture(scope="session")
def yolo_detector():
    """An untrained YOLO11n detector built from its yaml (no download)."""
    from ultralytics import YOLO

    threads = torch.get_num_threads()
    model = YOLO("yolo11n.yaml")
    torch.set_num_threads(threads)  # ultralytics may drop the process to 1 thread on small machines
    return model


@pytest.fixture(scope="session")
def scene_image() -> np.ndarray:
    """A small synthetic RGB scene (240x320): two flat shapes on a textured background."""
    rng = np.random.default_rng(7)
    image = rng.integers(40, 90, (240, 320, 3), dtype=np.uint8)
    image[40:140, 30:150] = (220, 40, 40)
    yy, xx = np.mgrid[:240, :320]
    image[(yy - 160) ** 2 + (xx - 230) ** 2 < 50**2] = (40, 200, 60)
    return image
