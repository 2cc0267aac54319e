"""HTTP rule service (FastAPI): see :mod:`powercheck.service.app`."""

from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path

MIN_TOKEN_LENGTH = 16
MAX_TOKEN_LENGTH = 512
TOKENS_ENV = "POWERCHECK_API_TOKENS"
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
"""RFC 6750 ``b64token``: what a bearer token may contain (so no ``#``, ``,``, ``:`` or spaces)."""
CLIENT_NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


def parse_tokens(text: str, origin: str) -> dict[str, str]:
    """Tokens from ``name:token`` entries, one per line or comma-separated; ``#`` starts a comment at the start of
    a line or after a space.

    A malformed entry is refused naming its line: no ``name:``, a name or token with characters
    outside :data:`CLIENT_NAME_PATTERN` / :data:`TOKEN_PATTERN` (a ``#``, ``,`` or ``:`` inside a
    token would otherwise cut it silently), a token shorter than 16 or longer than 512
    characters, a token used twice. Returns token -> client name.
    """
    tokens: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        content = re.split(r"(?:^|\s)#", line, maxsplit=1)[0]
        for entry in (e.strip() for e in content.split(",")):
            if not entry:
                continue
            where = f"{origin} line {number}"
            name, sep, token = entry.partition(":")
            name, token = name.strip(), token.strip()
            if not sep or not name:
                raise ValueError(f"{where}: expected name:token, got an entry without a client name")
            if not CLIENT_NAME_PATTERN.fullmatch(name):
                raise ValueError(f"{where}: client name {name[:64]!r} may use only letters, digits, '.', '_', '-'")
            if not TOKEN_PATTERN.fullmatch(token):
                raise ValueError(
                    f"{where}: the token for {name!r} has a character a bearer token cannot have "
                    "(allowed: letters, digits, - . _ ~ + / and trailing =)"
                )
            if not MIN_TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH:
                raise ValueError(
                    f"{where}: token for {name!r} must have {MIN_TOKEN_LENGTH} to {MAX_TOKEN_LENGTH} characters"
                )
            if token in tokens:
                raise ValueError(f"{where}: the token for {name!r} is used twice")
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
