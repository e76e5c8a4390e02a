import pytest

from plugins import catalogue
from plugins.catalogue import Extension, load_callable, load_catalogue


def test_every_extension_declares_itself_through_entry_points():
    extensions = {e.name: e for e in load_catalogue()}
    assert set(extensions) == {"recbole_ext", "mmaction_ext", "retrieval_ext"}
    assert extensions["recbole_ext"].host == "recbole"
    assert extensions["mmaction_ext"].host_module == "mmaction"
    assert extensions["retrieval_ext"].host == "salesforce-lavis"
    # declared stages resolve to callables
    for extension in extensions.values():
        if extension.baseline_stage:
            assert callable(load_callable(extension.baseline_stage))


def test_entry_point_of_the_wrong_type_is_named(monkeypatch):
    class FakeEntryPoint:
        name, value = "broken", "somewhere:THING"

        def load(self):
            return {"not": "an Extension"}

    monkeypatch.setattr(catalogue, "entry_points", lambda group: [FakeEntryPoint()])
    with pytest.raises(TypeError, match="'broken'.*somewhere:THING.*dict"):
        load_catalogue()


@pytest.mark.parametrize("spec", ["no_colon", "module:", ":attr"])
def test_load_callable_rejects_malformed_specs(spec):
    with pytest.raises(ValueError, match="module:function"):
        load_callable(spec)


def test_extension_activation_imports_the_package():
    ext = Extension(name="json", host="python", host_module="json")
    assert ext.activate().__name__ == "json"
