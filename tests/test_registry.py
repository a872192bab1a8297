"""Provider kinds come from one registry, built-ins through the same entry points as plugins;
a plugin that fails to load is named when a spec uses it and breaks nothing else; kinds declare
their traits instead of the code testing their names."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, ClassVar

from orchestrator import CallSettings, ProviderConfig, ProviderKind, ProviderTraits, Route, register_provider
from orchestrator.models import registry
from orchestrator.spec import load_spec
from orchestrator.workflow import prepare_workflow
from tests.process import orchestrator


def plugin_dir(tmp_path: Path, body: str) -> Path:
    """A folder holding an installed distribution with one `orchestrator.providers` entry point."""
    site = tmp_path / "site"
    info = site / "acme_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[orchestrator.providers]\nacme = acme_plugin:provider\n")
    (site / "acme_plugin.py").write_text(textwrap.dedent(body))
    return site


SPEC = """version: 1
name: p
goal: g
workspace: ws
providers: {box: {kind: acme, base_url: 'http://127.0.0.1:9'}}
models: {default: local/smollm2, debug: $model}
"""


def write(tmp_path: Path, model: str) -> Path:
    (tmp_path / "ws").mkdir(exist_ok=True)
    (tmp_path / "ws" / "a.py").write_text("a = 1\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("$model", model))
    return spec


def test_a_broken_plugin_is_named_and_can_be_switched_off(tmp_path: Path) -> None:
    site = plugin_dir(tmp_path, "raise ImportError('acme needs libacme 2')\n")
    env = {"PYTHONPATH": str(site)}
    done = orchestrator("validate", write(tmp_path, "box/m"), env=env)
    assert done.returncode == 2
    assert "providers.box.kind: plugin acme_plugin:provider failed to load: ImportError: acme needs libacme 2" in (
        done.stderr
    )
    assert "ORCHESTRATOR_DISABLE_PLUGINS" in done.stderr  # the hint says how to switch it off
    other = tmp_path / "other"
    other.mkdir()
    fine = write(other, "local/smollm2")
    fine.write_text(fine.read_text().replace("providers: {box: {kind: acme, base_url: 'http://127.0.0.1:9'}}\n", ""))
    assert orchestrator("validate", fine, env=env).returncode == 0  # the broken plugin breaks nothing else
    off = orchestrator("validate", write(tmp_path, "box/m"), env={**env, "ORCHESTRATOR_DISABLE_PLUGINS": "acme"})
    assert off.returncode == 2 and "unknown provider kind 'acme'" in off.stderr


def test_a_plugin_that_is_not_a_provider_kind_is_refused_by_name(tmp_path: Path) -> None:
    site = plugin_dir(tmp_path, "provider = 42\n")
    done = orchestrator("validate", write(tmp_path, "box/m"), env={"PYTHONPATH": str(site)})
    assert done.returncode == 2 and "acme_plugin:provider is a int, not a ProviderKind" in done.stderr


class SelfHosted(ProviderKind):
    """A kind that declares its hosts to be the user's own: no token price is needed for a budget."""

    traits: ClassVar[ProviderTraits] = ProviderTraits(real=False, self_hosted=True)

    def chat_model(self, route: Route, config: ProviderConfig, settings: CallSettings) -> Any:
        raise AssertionError("validation builds no model")

    def structured_kwargs(self, schema: dict[str, Any], name: str, config: ProviderConfig, mode: str) -> dict[str, Any]:
        return {}


def test_traits_declared_by_a_kind_decide_how_it_is_costed(tmp_path: Path) -> None:
    register_provider("selfhosted", SelfHosted())
    try:
        spec = write(tmp_path, "box/m")
        text = spec.read_text().replace(
            "kind: acme, base_url: 'http://127.0.0.1:9'", "kind: selfhosted, base_url: 'http://gpu.corp.example'"
        )
        spec.write_text(text + "limits: {max_cost_usd: 1}\n")
        workflow = prepare_workflow(load_spec(spec))  # a remote API kind without a price would be a spec error
        box = workflow.providers["box"]
        assert box.self_hosted and not box.in_process and not box.is_local and box.costed_by_time
        assert workflow.providers["local"].in_process and workflow.providers["local"].is_local
    finally:
        registry.unregister("selfhosted")
