"""Resource limits of the service: request body size, time to send headers and body, batch size.

* :class:`BodyGuard` (ASGI middleware, inside the token check): a request body larger than
  ``max_body_bytes`` is refused with 413 naming the limit -- at once when ``Content-Length``
  says so, else as soon as that many bytes arrived -- and a body that does not arrive within
  ``body_timeout_s`` is refused with 408. The route reads the body from the guard's buffer.
* :func:`guarded_protocol` (uvicorn's httptools or h11 protocol): a connection that does not complete a
  request's headers within ``header_timeout_s`` (a new connection, or the next request of a
  kept-alive one) is closed, so half-open connections cannot pile up.

The limits are :class:`ServiceLimits` (``powercheck serve`` options, defaults in the README).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio


@dataclass(frozen=True)
class ServiceLimits:
    """Limits of one service process (defaults documented in the README)."""

    max_body_bytes: int = 16 * 1024 * 1024
    """Largest request body [bytes]: 413 above it."""
    max_batch: int = 10_000
    """Notifications per batch request: 422 above it."""
    max_appliances: int = 50
    """Appliance rows per notification: 422 (single) or an invalid item (batch) above it."""
    header_timeout_s: float = 10.0
    """Time a client has to send a request's headers [s]; then the connection is closed."""
    body_timeout_s: float = 30.0
    """Time a client has to send a request's body [s]; then 408."""

    def __post_init__(self) -> None:
        checks = {
            "max_body_bytes": (1024, 1 << 31),
            "max_batch": (1, 1_000_000),
            "max_appliances": (1, 200),
            "header_timeout_s": (0.1, 3600),
            "body_timeout_s": (0.1, 3600),
        }
        for name, (lo, hi) in checks.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
                raise ValueError(f"service limit {name}: {value!r} is outside the allowed range [{lo}, {hi}]")


def _error(status: int, detail: str) -> tuple[int, bytes]:
    return status, json.dumps({"detail": detail, "errors": [f"(body): {detail}"]}).encode()


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyGuard:
    """Buffer a request body within ``max_body_bytes`` and ``body_timeout_s`` (see the module docstring)."""

    def __init__(self, app: Any, max_body_bytes: int, body_timeout_s: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    def _too_large(self) -> tuple[int, bytes]:
        return _error(413, f"request body larger than {self.max_body_bytes} bytes (limit max_body_bytes)")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > self.max_body_bytes:
                await _respond(send, *self._too_large())
                return
        import asyncio  # here: `powercheck screen` builds its parser from these limits without an event loop

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                async with asyncio.timeout_at(deadline):  # in this task: no extra task per message (wait_for's)
                    message = await receive()
            except TimeoutError:
                detail = f"request body not received within {self.body_timeout_s:g} s (limit body_timeout_s)"
                await _respond(send, *_error(408, detail))
                return
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body_bytes:
                await _respond(send, *self._too_large())
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        buffered = b"".join(chunks)
        chunks.clear()
        delivered = False

        async def replay() -> dict:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": buffered, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


HTTP_IMPLEMENTATIONS = ("auto", "httptools", "h11")


def http_implementation(choice: str = "auto") -> str:
    """The HTTP parser the service uses: ``httptools`` (uvicorn's C parser, about 3x less event-loop time per request
    than h11) when it is installed and ``choice`` is ``auto``, else ``h11``; ``choice`` names one explicitly."""
    if choice not in HTTP_IMPLEMENTATIONS:
        raise ValueError(f"http: {choice!r} is not one of {', '.join(HTTP_IMPLEMENTATIONS)}")
    if choice != "auto":
        return choice
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover - httptools is a dependency; a platform without a wheel falls back
        return "h11"
    return "httptools"


class _HeaderDeadline:
    """A deadline for a request's headers on one connection (mixed into uvicorn's protocols, before them): armed
    when the connection opens, cancelled when it is lost; the protocols disarm it when a request's headers are
    complete and arm it again for the next request."""

    header_timeout_s: float
    loop: Any
    transport: Any

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(header_timeout_s: float, http: str = "auto") -> type:
    """uvicorn's HTTP protocol (:func:`http_implementation`) with a deadline for every request's headers (for
    ``uvicorn.run(http=...)``).

    A connection that has not completed a request's headers ``header_timeout_s`` after it opened
    (or after its previous response) is closed.
    """
    timeout = float(header_timeout_s)
    if http_implementation(http) == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        class GuardedHttpToolsProtocol(_HeaderDeadline, HttpToolsProtocol):
            """uvicorn's httptools protocol with a deadline for every request's headers (``header_timeout_s``)."""

            header_timeout_s: float = timeout

            def on_headers_complete(self) -> None:
                self._disarm()  # a request's headers are complete
                super().on_headers_complete()

            def on_response_complete(self) -> None:
                pipelined = bool(self.pipeline)  # its headers are complete already: no deadline for it
                super().on_response_complete()
                if not pipelined and not self.transport.is_closing():
                    self._arm()  # the next request of a kept-alive connection

        return GuardedHttpToolsProtocol

    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(_HeaderDeadline, H11Protocol):
        """uvicorn's h11 protocol with a deadline for every request's headers (``header_timeout_s``)."""

        header_timeout_s: float = timeout

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:  # a request's headers are complete
                self._disarm()

        def on_response_complete(self) -> None:
            self._arm()  # the next request of a kept-alive connection (disarmed again if one is pipelined)
            super().on_response_complete()

    return GuardedH11Protocol
