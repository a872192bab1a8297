"""Logging, progress display and provider clients: what users and operators see."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import structlog

from orchestrator import CallSettings, ProviderConfig
from orchestrator.catalog import Route
from orchestrator.cli._logging import configure_logging
from orchestrator.runtime.progress import LineProgress, LiveProgress


@pytest.fixture
def restore_structlog() -> Any:
    yield
    structlog.reset_defaults()


def test_json_logs_redact_secret_environment_values(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], restore_structlog: Any
) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-test-0123456789abcdef")
    configure_logging("json", "info")
    log = structlog.get_logger("t")
    log.info("model.failed", error="401 for key sk-test-0123456789abcdef", extra={"k": "sk-test-0123456789abcdef"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)  # JSON lines when asked (and when stderr is not a terminal)
    assert event["event"] == "model.failed" and event["level"] == "info"
    assert "sk-test-0123456789abcdef" not in line and "***" in event["error"]


def test_log_level_filters_info_by_default(capsys: pytest.CaptureFixture[str], restore_structlog: Any) -> None:
    configure_logging("json", "warning")
    structlog.get_logger("t").info("quiet")
    structlog.get_logger("t").warning("loud")
    err = capsys.readouterr().err
    assert "loud" in err and "quiet" not in err


def test_line_progress_prints_one_line_per_event() -> None:
    stream = io.StringIO()
    progress = LineProgress(stream)
    progress.started("debug", "t3", "local/smollm2")
    progress.finished("debug", "t3", "failed", None, 1500, 0)
    progress.note("fell back")
    assert stream.getvalue().splitlines() == [
        "> debug[t3] on local/smollm2",
        "FAILED debug[t3] - 1.5s 0 tokens",
        "note: fell back",
    ]


def test_live_progress_renders_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    with LiveProgress() as progress:
        progress.started("plan", "plan", "local/smollm2")
        progress.finished("plan", "plan", "ok", "local/smollm2", 1200, 42)
        progress.note("a note")
    rows = progress.rows
    assert rows["plan/plan"]["status"] == "ok" and rows["plan/plan"]["tokens"] == 42
    assert "local/smollm2" in capsys.readouterr().err


def test_openai_client_has_a_timeout_and_no_retries_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.providers.openai import provider

    monkeypatch.setenv("TEST_KEY", "k-123456789")
    config = ProviderConfig(name="x", kind="openai", base_url="http://127.0.0.1:9/v1", api_key_env="TEST_KEY")
    settings = CallSettings(timeout_s=7)
    model: Any = provider.chat_model(Route("x", "m"), config, settings)
    # the client's own timeout is finite, a backstop behind the call's (so the call's is what fires)
    assert model.max_retries == 0 and model.request_timeout == settings.client_timeout_s > 7
    assert model.openai_api_key.get_secret_value() == "k-123456789"


def test_openai_client_without_its_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.models.failure import classify
    from orchestrator.providers.openai import provider

    monkeypatch.delenv("TEST_KEY", raising=False)
    config = ProviderConfig(name="x", kind="openai", base_url="http://127.0.0.1:9/v1", api_key_env="TEST_KEY")
    with pytest.raises(PermissionError) as caught:
        provider.chat_model(Route("x", "m"), config, CallSettings())
    assert classify(caught.value, "x/m").kind == "config" and "TEST_KEY" in str(caught.value)


def test_ollama_client_always_has_a_timeout() -> None:
    from orchestrator.providers.ollama import provider

    config = ProviderConfig(name="ollama", kind="ollama", base_url="http://127.0.0.1:9")
    settings = CallSettings(timeout_s=9)
    model: Any = provider.chat_model(Route("ollama", "qwen3:8b", context_window=4096), config, settings)
    timeout = model.client_kwargs["timeout"]
    assert timeout.read == settings.client_timeout_s > 9 and timeout.connect <= 9
    assert model.num_ctx == 4096
    assert provider.structured_kwargs({"type": "object"}, "X", config) == {"format": {"type": "object"}}
