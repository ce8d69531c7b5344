"""ultralytics internals we rely on: each exists with the arguments we pass, a missing one stops the model from being
built with an error naming it, the installed version and the supported range, and nothing else in sam2_model
reaches past the adapter."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest
import torch
import ultralytics

from sam2_model import Sam2Model
from sam2_model import ultralytics_adapter as adapter
from sam2_model.ultralytics_adapter import UnsupportedUltralyticsError

PACKAGE = Path(adapter.__file__).parent
ROOT = PACKAGE.parent
AMG = importlib.import_module("ultralytics.models.sam.amg")


def named_error(member: str) -> str:
    """The message of an UnsupportedUltralyticsError about `member`, as a regex."""
    return rf"{re.escape(member)}.*ultralytics{re.escape(adapter.SUPPORTED_ULTRALYTICS)}"


@pytest.mark.parametrize("name", list(adapter.NETWORK_METHODS))
def test_network_methods_exist_and_take_our_arguments(small_model, name):
    method = getattr(small_model.net, name)
    inspect.signature(method).bind(**dict.fromkeys(adapter.NETWORK_METHODS[name]))


@pytest.mark.parametrize("name", list(adapter.AMG_FUNCTIONS))
def test_amg_helpers_exist_and_take_our_arguments(name):
    inspect.signature(getattr(AMG, name)).bind(**dict.fromkeys(adapter.AMG_FUNCTIONS[name]))


def test_network_attributes_exist(small_model):
    assert [name for name in adapter.NETWORK_ATTRIBUTES if not hasattr(small_model.net, name)] == []
    adapter.check_network(small_model.net)


def test_the_adapter_checks_every_member_it_calls():
    """Each `_member(...)` / `_amg_function(...)` lookup in the adapter names a member its check covers."""
    source = (PACKAGE / "ultralytics_adapter.py").read_text()
    network = set(re.findall(r'_member\(net, "(\w+)"', source))
    helpers = set(re.findall(r'_amg_function\("(\w+)"\)', source))
    assert network and network <= set(adapter.NETWORK_METHODS)
    assert helpers == set(adapter.AMG_FUNCTIONS)


def test_no_other_module_reaches_into_ultralytics():
    """Private network calls and imports of ultralytics' model code go through the adapter only (the rest of
    sam2_model may use ultralytics' settings and downloader, `ultralytics.utils`)."""
    reaching = re.compile(r"\bnet\._[a-z]|^\s*(from|import)\s+ultralytics\.models", re.MULTILINE)
    modules = [path for path in sorted(PACKAGE.glob("*.py")) if path.name != "ultralytics_adapter.py"]
    assert [path.name for path in modules if reaching.search(path.read_text())] == []


@pytest.mark.parametrize("name", list(adapter.NETWORK_METHODS))
def test_a_missing_network_method_fails_the_model_build_naming_it(small_model, monkeypatch, name):
    monkeypatch.delattr(type(small_model.net), name)
    with pytest.raises(UnsupportedUltralyticsError, match=named_error(f"SAM2Model.{name}")) as raised:
        Sam2Model(small_model.net, small_model.spec, small_model.device, "test")  # not moved: shared
    assert f"ultralytics {ultralytics.__version__} is not supported" in str(raised.value)
    assert raised.value.member == f"SAM2Model.{name}" and raised.value.version == ultralytics.__version__


@pytest.mark.parametrize("name", adapter.NETWORK_ATTRIBUTES)
def test_a_missing_network_attribute_fails_the_check_naming_it(small_model, monkeypatch, name):
    monkeypatch.delattr(small_model.net, name)
    with pytest.raises(UnsupportedUltralyticsError, match=named_error(f"SAM2Model.{name}")):
        adapter.check_network(small_model.net)


@pytest.mark.parametrize("name", list(adapter.AMG_FUNCTIONS))
def test_a_missing_amg_helper_fails_the_check_naming_it(small_model, monkeypatch, name):
    monkeypatch.delattr(AMG, name)
    with pytest.raises(UnsupportedUltralyticsError, match=named_error(f"ultralytics.models.sam.amg.{name}")):
        adapter.check_network(small_model.net)


def test_a_changed_signature_fails_the_check(small_model, monkeypatch):
    monkeypatch.setattr(AMG, "uncrop_points", lambda pts, box: pts)  # parameters renamed
    with pytest.raises(UnsupportedUltralyticsError, match=r"uncrop_points cannot take the arguments we pass"):
        adapter.check_network(small_model.net)


def test_a_member_missing_at_call_time_is_named_too(small_model, monkeypatch):
    monkeypatch.delattr(type(small_model.net), "_apply_non_overlapping_constraints")
    with pytest.raises(UnsupportedUltralyticsError, match=named_error("SAM2Model._apply_non_overlapping_constraints")):
        adapter.apply_non_overlapping_constraints(small_model.net, torch.zeros(2, 1, 4, 4))
    monkeypatch.delattr(AMG, "uncrop_points")
    with pytest.raises(UnsupportedUltralyticsError, match=named_error("ultralytics.models.sam.amg.uncrop_points")):
        adapter.uncrop_points(torch.zeros(1, 2), [0, 0, 4, 4])


def test_the_installed_ultralytics_is_in_the_pinned_range():
    specifiers = pytest.importorskip("packaging.specifiers")
    assert ultralytics.__version__ in specifiers.SpecifierSet(adapter.SUPPORTED_ULTRALYTICS)
    pinned = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert f"ultralytics{adapter.SUPPORTED_ULTRALYTICS}" in pinned
    assert f'"ultralytics{adapter.SUPPORTED_ULTRALYTICS}"' in (ROOT / "pyproject.toml").read_text()
