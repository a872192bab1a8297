"""The result cache: a model call whose model, parameters, messages (prompt and file contents)
and output schema are unchanged is answered from `.orchestrator/cache.sqlite`, with no model
call. Only answers are cached, never errors. `--no-cache` turns it off for a run.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult

from orchestrator.models.recording import KeyedChatModel, chat_result, response_of
from orchestrator.policy.secrets import redact_tree


class ResponseCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lock = threading.Lock()
        self.conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self.conn.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, response TEXT NOT NULL)")
        self.conn.commit()
        self.hits = 0
        self.misses = 0
        self.secrets: list[str] = []  # redacted from every answer stored

    def get(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            row = self.conn.execute("SELECT response FROM answers WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        found: dict[str, Any] = json.loads(row[0])
        return found

    def put(self, key: str, response: dict[str, Any]) -> None:
        with self.lock:
            stored = json.dumps(redact_tree(response, self.secrets))
            self.conn.execute("INSERT OR REPLACE INTO answers VALUES (?, ?)", (key, stored))
            self.conn.commit()

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class CachingChatModel(KeyedChatModel):
    """Answers from the cache when it can, else asks the model and keeps the answer."""

    inner: BaseChatModel

    @property
    def _llm_type(self) -> str:
        return "orchestrator-cache"

    async def _answer(
        self, key: str, request: dict[str, Any], messages: list[BaseMessage], stop: Any, kwargs: dict[str, Any]
    ) -> ChatResult:
        cache: ResponseCache = self.recorder
        found = cache.get(key)
        if found is not None:
            return chat_result({**found, "usage": {"input_tokens": 0, "output_tokens": 0}}, cached=True)
        answer = await self.inner.ainvoke(messages, stop=stop, **kwargs)
        response = response_of(answer)
        cache.put(key, response)
        return chat_result(response)
