"""The result cache: a model call whose model, endpoint, parameters, messages (prompt and file
contents) and output schema are unchanged is answered from the run data folder's `cache.sqlite`,
with no model call. Only answers are cached, never errors. `--no-cache` turns it off for a run.

Every entry is signed with a key of this user's that lives outside every repository (HMAC-SHA256):
an entry the key did not sign (a cache committed to a repository, or edited) is never used. A
cache file that cannot be read is set aside, not trusted and not fatal.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult

from orchestrator.log import get_logger
from orchestrator.models.recording import KeyedChatModel, chat_result, response_of
from orchestrator.policy.secrets import redact_tree

log = get_logger(__name__)
SCHEMA = "CREATE TABLE IF NOT EXISTS signed_answers (key TEXT PRIMARY KEY, response TEXT NOT NULL, mac TEXT NOT NULL)"


class ResponseCache:
    def __init__(self, path: Path, secret: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.secret = secret  # signs every entry; kept outside every repository
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.rejected = 0  # entries whose signature did not match: never used
        self.unwritable = 0  # answers the cache could not keep (its disk full, say)
        self.secrets: list[str] = []  # redacted from every answer stored
        self.conn = self._open(path)

    def _open(self, path: Path) -> sqlite3.Connection:
        """The cache database, or a fresh one when the file is not a database we can use."""
        try:
            conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA trusted_schema = OFF")  # no functions from the file's own schema
            conn.execute(SCHEMA)
            conn.commit()
            return conn
        except sqlite3.DatabaseError as exc:
            aside = path.with_suffix(".unreadable")
            path.replace(aside)
            log.warning("cache.unreadable", path=str(path), moved_to=str(aside), error=str(exc))
            conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
            conn.execute(SCHEMA)
            conn.commit()
            return conn

    def _mac(self, key: str, response: str) -> str:
        return hmac.new(self.secret, f"{key}\n{response}".encode(), hashlib.sha256).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            try:
                row = self.conn.execute("SELECT response, mac FROM signed_answers WHERE key = ?", (key,)).fetchone()
            except sqlite3.DatabaseError:
                row = None
            if row is not None and not hmac.compare_digest(str(row[1]), self._mac(key, str(row[0]))):
                self.rejected += 1
                log.warning("cache.unsigned_entry", path=str(self.path), key=key[:12])
                row = None
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        try:
            found: dict[str, Any] = json.loads(row[0])
        except ValueError:
            return None
        return found if isinstance(found, dict) else None

    def put(self, key: str, response: dict[str, Any]) -> None:
        """Keep an answer; a cache that cannot take it (a full disk) is warned about, never
        fatal: the answer itself is not lost, the run goes on with it."""
        with self.lock:
            stored = json.dumps(redact_tree(response, self.secrets))
            try:
                self.conn.execute(
                    "INSERT OR REPLACE INTO signed_answers VALUES (?, ?, ?)", (key, stored, self._mac(key, stored))
                )
                self.conn.commit()
            except sqlite3.Error as exc:
                self.unwritable += 1
                if self.unwritable == 1:
                    log.warning("cache.unwritable", path=str(self.path), error=str(exc))

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
