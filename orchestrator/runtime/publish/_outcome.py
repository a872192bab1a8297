"""What a publish did: comments created, updated (their text changed), left as they were, and
resolved (earlier ones this review no longer makes), the review's address, and every request."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.outputs.review import mark

RESOLVED = mark("resolved")


@dataclass
class Published:
    forge: str
    target: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    resolved: int = 0
    skipped: str = ""  # why nothing was posted (a newer head)
    url: str = ""
    notes: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if self.skipped:
            return [f"{self.forge} {self.target}: nothing posted: {self.skipped}"]
        counts = f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, {self.resolved} resolved"
        found = [f"{self.forge} {self.target}: {counts}" + (f" ({self.url})" if self.url else "")]
        return found + [f"note: {note}" for note in self.notes]


def resolved_body(old: str, head: str, key: str) -> str:
    """An earlier comment this review no longer makes: its first line struck through, its marker kept
    (a later review that makes it again updates it), and no suggestion block left to apply."""
    first = next((line for line in old.splitlines() if line.strip() and not line.startswith("<!--")), "")
    return (
        f"**Resolved**: not reported by the review of `{head[:12]}`.\n\n~~{first.strip()}~~\n\n{RESOLVED}\n{mark(key)}"
    )
