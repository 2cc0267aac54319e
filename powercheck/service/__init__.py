"""HTTP rule service (FastAPI): see :mod:`powercheck.service.app`."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

MIN_TOKEN_LENGTH = 16
TOKENS_ENV = "POWERCHECK_API_TOKENS"


def parse_tokens(text: str, origin: str) -> dict[str, str]:
    """Tokens from ``name:token`` entries (comma- or newline-separated; ``#`` comments).

    A bare ``token`` gets the client name ``client-<n>``. Returns token -> client name.
    """
    tokens: dict[str, str] = {}
    entries = [e.strip() for line in text.splitlines() for e in line.split("#", 1)[0].split(",")]
    for n, entry in enumerate(e for e in entries if e):
        name, _, token = entry.rpartition(":")
        name = name.strip() or f"client-{n + 1}"
        token = token.strip()
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"{origin}: token for {name!r} is shorter than {MIN_TOKEN_LENGTH} characters")
        if token in tokens:
            raise ValueError(f"{origin}: the token for {name!r} is used twice")
        tokens[token] = name
    return tokens


def load_tokens(tokens_file: str | Path | None = None) -> dict[str, str]:
    """Tokens from a file (if given) and the ``POWERCHECK_API_TOKENS`` environment variable."""
    tokens: dict[str, str] = {}
    if tokens_file:
        path = Path(tokens_file)
        if not path.is_file():
            raise ValueError(f"tokens file {path} not found")
        tokens.update(parse_tokens(path.read_text(encoding="utf-8"), str(path)))
    env = os.environ.get(TOKENS_ENV)
    if env:
        tokens.update(parse_tokens(env, TOKENS_ENV))
    return tokens


def generated_token() -> dict[str, str]:
    """A one-off token for a demo run, announced on stderr."""
    token = secrets.token_urlsafe(24)
    print(
        f"powercheck serve: no API tokens configured ({TOKENS_ENV} or --tokens-file); "
        f"generated one for this run:\n  Authorization: Bearer {token}",
        file=sys.stderr,
        flush=True,
    )
    return {token: "generated"}
