"""Values derived from a frozen object, kept per object outside it (so its equality and dumps ignore them)."""

from __future__ import annotations


class IdentityMemo:
    """Per object, by identity, a dict of what is derived from it. The object is held with its dict, so its id is
    not reused while the entry lives; the memo is cleared when it holds ``limit`` objects (a long-running process
    that loads many policies or regions does not keep them all)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[int, tuple[object, dict]] = {}

    def of(self, obj: object) -> dict:
        """The dict of ``obj`` (new and empty the first time)."""
        held = self._held.get(id(obj))
        if held is None or held[0] is not obj:
            if len(self._held) >= self.limit:
                self._held.clear()
            held = self._held[id(obj)] = (obj, {})
        return held[1]
