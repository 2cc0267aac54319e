"""The callable rule service: FastAPI app over the rule engine and the decision store.

Endpoints (all under bearer-token auth except ``/healthz``):

==========================  ===========================================================
``POST /v1/assess``         decide one notification; 200 with the decision (stored before
                            the response), 409 if the same id+revision was decided with
                            other content, 422 naming the bad fields
``POST /v1/assess/batch``   decide up to ``max_batch`` notifications; every item gets a
                            status (decided / replayed / invalid / conflict); decisions are
                            committed chunk by chunk
``GET /v1/decisions/{id}``  a stored decision (``?revision=``, default the latest)
``POST /v1/requests/{id}/status``
                            move a request of the capacity ledger to a status (``built``
                            on a completion notice, ``cancelled``, ``approved`` by a case
                            handler, ...); 404 for an unknown id, 409 naming both states
                            for a transition the ledger does not allow
``GET /v1/requests/{id}``   a request of the ledger with its status history
``GET /v1/ledger``          the ledger's requests (``?network=``, ``?status=``)
``GET /v1/policy``          the active policy (every limit with tag and source) and the
                            grid-model version
``GET /v1/status``          engine, policy and grid versions, store status, decisions stored,
                            the service's limits
``GET /healthz``            liveness only (no token, no database): ``{"status": "ok"}``
==========================  ===========================================================

Resource limits (:class:`~powercheck.service.limits.ServiceLimits`, ``serve`` options): request
body size (413), notifications per batch and appliances per notification (422 naming the
limit), and the time a client has to send headers (the connection is closed) and body (408).

Every decision is taken on the capacity ledger of the service's database: approved and built
requests that are not yet part of the grid model are applied to the grid first, and a
decision is committed together with the request it records. Assessments are serialised, so
the approvals of concurrent calls never add up to an overload; single requests that arrive while
the engine is busy are decided together as one batch in submitted order, exactly as one after
the other (:mod:`powercheck.service.coalesce`), and each is answered once its decision is committed.

Resubmitting a notification with the same id, revision and content returns the stored
decision unchanged (header ``X-Powercheck-Replay: true``): the workflow can retry safely.

Screening (``?screening=true`` on both assess endpoints) decides challenging appliances without datasheet values
on the policy's appliance defaults (named in the reasons and assumptions) instead of answering
``request_info``. It is refused (403) unless the service was started with ``--allow-screening`` (default off:
production decisions never use appliance defaults); a screening decision is a study on the current ledger: it is
neither stored nor recorded in the ledger (header ``X-Powercheck-Screening: true``).
"""

import asyncio
import gc
import hmac
import json
import logging
import threading
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from powercheck import __version__
from powercheck.decision_json import DecisionRecord, records
from powercheck.gcpause import collect_on_resume, gc_paused
from powercheck.grid.region import NETWORK_ID_PATTERN, GridRegion
from powercheck.ledger import CapacityState, IllegalTransition, LedgerRequest, RequestStatus, UnknownRequest
from powercheck.models import MAX_REVISION, NOTIFICATION_ID_PATTERN, Decision, Notification, describe_validation_error
from powercheck.report import render_report
from powercheck.rules.engine import Assessor
from powercheck.rules.policy import PolicyKey, load_policy
from powercheck.service.coalesce import Coalescer
from powercheck.service.commit import Entry, GroupCommit
from powercheck.service.limits import BodyGuard, ServiceLimits
from powercheck.service.store import DecisionStore, StoredDecision
from powercheck.service.warmup import warm_up
from powercheck.texts import language, localize

log = logging.getLogger("powercheck.service")

REPLAY_HEADER = "X-Powercheck-Replay"

NotificationId = Annotated[
    str,
    PathParam(
        pattern=NOTIFICATION_ID_PATTERN,
        max_length=64,
        description="1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
    ),
]
Revision = Annotated[int | None, Query(ge=1, le=MAX_REVISION, description=f"1 to {MAX_REVISION}")]
Screening = Annotated[
    bool,
    Query(
        description="A screening study: appliance defaults (named) for missing datasheet values; the decision is "
        "neither stored nor recorded in the ledger. Only when the service runs with --allow-screening (else 403)"
    ),
]
SCREENING_HEADER = "X-Powercheck-Screening"
GC_GEN0_THRESHOLD = 20_000
"""Allocations between young-generation collections (Python's default 700): fewer collections per decision."""
JSON_TYPES = ("application/json",)


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


def _line_column(doc: str | bytes, pos: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    newline = "\n" if isinstance(doc, str) else b"\n"
    return doc.count(newline, 0, pos) + 1, pos - (doc.rfind(newline, 0, pos) + 1) + 1


@dataclass
class ServiceConfig:
    """Everything the service needs to start."""

    grid: Path
    db: Path
    tokens: dict[str, str]
    """token -> client name"""
    policy: Path | None = None
    cache_dir: Path | None = None
    chunk_size: int = 256
    limits: ServiceLimits = field(default_factory=ServiceLimits)
    allow_outside_region: bool = False
    """The region's manifest may name files outside its directory."""
    allow_screening: bool = False
    """Clients may ask for screening decisions (appliance defaults, named; never stored or recorded)."""
    telemetry: bool = False
    """FastAPI's OpenTelemetry spans, metrics and logs (when a provider is configured). Off by default: otherwise
    FastAPI looks for a configured provider on every request (about 6 % of the event loop's time per assessment)."""
    extra: dict[str, Any] = field(default_factory=dict)


class BatchRequest(BaseModel):
    notifications: list[dict[str, Any]] = Field(
        description="Notifications (each as in POST /v1/assess); each item is validated on its own",
        json_schema_extra={"items": {"$ref": "#/components/schemas/Notification"}},
    )


class BatchItem(BaseModel):
    index: int
    notification_id: str | None = None
    revision: int | None = None
    status: Literal["decided", "replayed", "invalid", "conflict"]
    decision: Decision | None = None
    errors: list[str] = Field(default_factory=list)


class BatchResponse(BaseModel):
    results: list[BatchItem]
    counts: dict[str, int]


class StatusChange(BaseModel):
    status: RequestStatus
    note: str | None = Field(default=None, max_length=500)


class RequestView(BaseModel):
    notification_id: str
    revision: int
    metering_point_id: str
    network_id: str | None
    bus: int | None
    status: RequestStatus
    job_type: str | None
    installer_id: str | None
    submitted_at: str | None
    decided_at: str | None
    fuse_after_a: float | None
    device_after: dict[str, Any] | None = None
    kv_after_a: float | None = None
    reservation: dict[str, Any]
    conditions: list[str]
    history: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def of(cls, r: LedgerRequest, history: list[dict[str, Any]] | None = None) -> "RequestView":
        return cls(
            notification_id=r.notification_id,
            revision=r.revision,
            metering_point_id=r.metering_point_id,
            network_id=r.network_id,
            bus=r.bus,
            status=r.status,
            job_type=r.job_type,
            installer_id=r.installer_id,
            submitted_at=r.submitted_at.isoformat() if r.submitted_at else None,
            decided_at=r.decided_at.isoformat() if r.decided_at else None,
            fuse_after_a=r.fuse_after_a,
            device_after=r.device_after,
            kv_after_a=r.kv_after_a,
            reservation=json.loads(r.reservation.to_json()),
            conditions=list(r.conditions),
            history=history or [],
        )


class ErrorResponse(BaseModel):
    detail: str
    errors: list[str] = Field(default_factory=list)


class Liveness(BaseModel):
    status: Literal["ok"]


class Health(BaseModel):
    status: str
    engine_version: str
    policy_version: str
    policy_hash: str
    grid_model_version: str
    region: str
    store: str
    decisions_stored: int
    limits: dict[str, float]


@dataclass
class _State:
    assessor: Assessor
    store: DecisionStore
    config: ServiceConfig
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Serialises assessments and ledger changes (the ledger state is shared); not held while rows are committed."""
    commits: GroupCommit = field(init=False)
    coalescer: Coalescer | None = None
    """Decides concurrent single requests together (started with the event loop)."""
    fast_answers: int = 0
    """``POST /v1/assess`` requests answered without FastAPI's routing (the fast path; for tests)."""

    def __post_init__(self) -> None:
        self.commits = GroupCommit(self.store)

    def reload_ledger(self) -> None:
        """Rebuild the ledger state from the database (after a failed commit)."""
        self.assessor.ledger = CapacityState.of(self.assessor.region, self.store.ledger.list())

    def decide(
        self, notifications: list[Notification], client: str, input_hashes: list[str] | None = None
    ) -> tuple[list[DecisionRecord], Entry]:
        """Decide on the ledger and hand decisions (as the records of their JSON, made from the decided batch without
        Decision objects) and requests to the group commit; the caller holds the lock. ``input_hashes``: the
        notifications' input hashes when the caller has them (not computed again).

        Wait for the entry (:meth:`GroupCommit.wait`, after releasing the lock) before answering: its rows are
        on disk when it returns. After a failed commit the ledger is rebuilt from the database first.
        """
        while True:
            if self.commits.needs_reload():
                self.reload_ledger()
                self.commits.reloaded()
            assessed = self.assessor.assess_isolated(notifications)
            decided = records(assessed.entries, assessed.language, input_hashes)
            entry = self.commits.submit(decided, client, assessed.requests)
            if entry is not None:
                return decided, entry
            # a commit failed while deciding: this decision saw the lost state; decide again on the rebuilt one

    def screen(self, notifications: list[Notification]) -> list[Decision]:
        """Screening decisions on a copy of the ledger (nothing stored or recorded); the caller holds the lock."""
        a = self.assessor
        copy = CapacityState.of(a.region, list(a.ledger.requests.values())) if a.ledger is not None else None
        study = Assessor(a.region, a.policy, clock=a.clock, ledger=copy, language=a.language, screening=True)
        return study.assess_isolated(notifications).decisions


def _screening_refused() -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_403_FORBIDDEN,
        content={
            "detail": "screening decisions are not allowed on this service",
            "errors": [
                "screening: appliance defaults are off for production decisions; start the service with "
                "--allow-screening to allow screening studies"
            ],
        },
    )


def _in_language(decision_json: str, accept_language: str | None) -> str:
    """A stored decision (kept in English with its messages) in the language the client accepts."""
    lang = language(accept_language)
    if lang == "en":
        return decision_json
    return localize(Decision.model_validate_json(decision_json), lang).model_dump_json()


def _conflict(stored: StoredDecision, new_hash: str) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_409_CONFLICT,
        content={
            "detail": (
                f"notification {stored.notification_id} revision {stored.revision} was already decided with other "
                "content; submit the change as a new revision"
            ),
            "errors": [f"input_hash: stored {stored.input_hash[:16]}..., submitted {new_hash[:16]}..."],
        },
    )


def create_app(config: ServiceConfig) -> FastAPI:
    """Build the app; the region, policy and store are opened at startup."""
    if not config.tokens:
        raise ValueError("tokens: at least one API token is required (no token, no decision)")

    holder: dict[str, _State] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        region = GridRegion.load(config.grid, cache_dir=config.cache_dir, allow_outside=config.allow_outside_region)
        policy = load_policy(config.policy)
        store = DecisionStore(config.db)
        store.ledger.expire(datetime.now(UTC), policy.number(PolicyKey.APPROVAL_VALID_DAYS))
        ledger = CapacityState.of(region, store.ledger.list())
        st = holder["state"] = _State(Assessor(region, policy, ledger=ledger), store, config)
        st.coalescer = Coalescer(st, asyncio.get_running_loop(), max_group=config.chunk_size)
        app.state.service = st  # for introspection in tests
        # the engine's kernels are loaded now, before uvicorn accepts connections, not by the first request
        warm_s = warm_up(st.assessor)
        # the region's arrays, the policy and the imported modules live as long as the process: the collector
        # need not scan them again and again, and the many short-lived objects of a decision rarely form cycles
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)
        # a coalesced group's decisions are alive until committed: a collection at the end of each engine pause
        # walked them once per group (one collection of about 1 ms per group); the threshold alone is enough
        collect_on_resume(False)
        log.info(
            "powercheck service ready: region %s (%s), policy %s %s (warm-up %.2f s)",
            region.name,
            region.version,
            policy.id,
            policy.version,
            warm_s,
        )
        yield
        st.coalescer.close()
        st.store.close()
        collect_on_resume(True)

    app = FastAPI(
        title="powercheck rule service",
        version=__version__,
        description=__doc__,
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry (older FastAPI keeps the argument in app.extra, unused)
        telemetry=None if config.telemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    limits = config.limits

    class AssessFastPath:
        """``POST /v1/assess`` without a query, with a JSON body that is a valid notification within the limits:
        answered here, inside the token check and the body guard, without FastAPI's routing, dependency solving
        and response machinery (about a third of the event loop's time per request). The body is read and
        validated exactly as the route does (``json.loads``, then :class:`Notification` validation) and the
        answer is the route's (:func:`decide_one`); anything else -- invalid JSON or fields, too many appliances,
        a query (``?screening=``), another content type -- goes on to the route unchanged, so its errors and
        documentation stay FastAPI's. An exception here reaches the same 500 handler as one in the route."""

        def __init__(self, app: ASGIApp):
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if (
                scope["type"] != "http"
                or scope["path"] != "/v1/assess"
                or scope["method"] != "POST"
                or scope.get("query_string")
            ):
                await self.app(scope, receive, send)
                return
            message = await receive()  # the body guard's buffer: the whole body in one message
            notification = None
            headers = dict(reversed(scope["headers"]))  # the first of repeated headers, as Request.headers
            content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
            if message.get("type") == "http.request" and content_type == b"application/json":
                try:
                    data = json.loads(message.get("body", b""))
                    if isinstance(data, dict):
                        notification = Notification.model_validate(data)
                except Exception:  # noqa: BLE001 - bad JSON, bad fields, nesting too deep: the route answers it
                    notification = None
            if notification is None or len(notification.appliances) > limits.max_appliances:
                delivered = False

                async def replay() -> Any:
                    nonlocal delivered
                    if not delivered:
                        delivered = True
                        return message
                    return await receive()

                await self.app(scope, replay, send)
                return
            accept = headers.get(b"accept-language")
            state().fast_answers += 1
            response = await decide_one(
                notification, scope["state"]["client"], accept.decode("latin-1") if accept is not None else None
            )
            await response(scope, receive, send)

    # innermost: the body is buffered (and its size and time limited) and the token checked before
    app.add_middleware(AssessFastPath)
    # inside the token check (added first, so the token middleware below wraps it): no token, no body read
    app.add_middleware(BodyGuard, max_body_bytes=limits.max_body_bytes, body_timeout_s=limits.body_timeout_s)
    bearer = HTTPBearer(auto_error=False, description="API token issued by the grid owner")
    token_items = [(token.encode(), name) for token, name in config.tokens.items()]

    def authenticate(header: str | None) -> tuple[str | None, str]:
        """(client name, '') for a valid ``Bearer`` header, else (None, why)."""
        if not header:
            return None, "missing bearer token"
        scheme, _, supplied = header.partition(" ")
        if scheme.lower() != "bearer" or not supplied.strip():
            return None, "missing bearer token"
        client = None
        raw = supplied.strip().encode()
        for token, name in token_items:  # constant-time compare against every token
            if hmac.compare_digest(raw, token):
                client = name
        return (client, "") if client else (None, "invalid bearer token")

    class TokenGuard:
        """Authentication before the body is read or validated: no token, no decision, and an unauthenticated
        caller learns nothing about the payload format (a plain ASGI middleware: no extra task per request)."""

        def __init__(self, app: ASGIApp):
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
                await self.app(scope, receive, send)
                return
            headers = dict(reversed(scope["headers"]))  # the first of repeated headers, as Request.headers
            authorization = headers.get(b"authorization")
            client, why = authenticate(authorization.decode("latin-1") if authorization is not None else None)
            if client is None:
                response = JSONResponse(
                    status_code=status.HTTP_401_UNAUTHORIZED,
                    content={"detail": why, "errors": []},
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
            scope.setdefault("state", {})["client"] = client
            content_type = headers.get(b"content-type")
            got = content_type.decode("latin-1") if content_type is not None else None
            if scope["method"] in ("POST", "PUT", "PATCH") and not _is_json(got):
                response = JSONResponse(
                    status_code=422,
                    content={
                        "detail": "invalid request",
                        "errors": [
                            f"(body): send JSON with content-type: application/json "
                            f"(got {repr(got[:80]) if got else 'no content-type'})"
                        ],
                    },
                )
                await response(scope, receive, send)
                return
            await self.app(scope, receive, send)

    app.add_middleware(TokenGuard)

    async def client_of(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> str:
        """The authenticated client (the middleware has checked the token; this documents the scheme)."""
        client = getattr(request.state, "client", None)
        if client is None:  # pragma: no cover - the middleware guards every /v1 route
            raise HTTPException(status_code=401, detail="missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        return client

    def state() -> _State:
        return holder["state"]

    def _appliance_limit(count: int) -> str:
        return f"{count} appliance rows; at most {limits.max_appliances} per notification (limit max_appliances)"

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":  # loc is ("body", character offset): say line and column
                offset = err["loc"][-1] if isinstance(err["loc"][-1], int) else 0
                line, column = _line_column(exc.body or "", offset)
                why = (err.get("ctx") or {}).get("error", "JSON decode error")
                errors.append(f"(body): not valid JSON: {why} at line {line} column {column}")
                continue
            loc = [p for p in err.get("loc", ()) if p != "body"]
            path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
            msg = str(err.get("msg", "invalid"))
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            errors.append(f"{path or '(body)'}: {msg}")
        return JSONResponse(status_code=422, content={"detail": "invalid request", "errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # the body could not be parsed at all (e.g. nested too deeply)
            return JSONResponse(
                status_code=422, content={"detail": "invalid request", "errors": [f"(body): {exc.detail}"]}
            )
        return JSONResponse(
            status_code=exc.status_code, content={"detail": exc.detail, "errors": []}, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover - safety net
        error_id = uuid.uuid4().hex[:12]
        log.exception("unexpected error %s on %s %s", error_id, request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": f"internal error {error_id}", "errors": []})

    @app.get("/healthz", response_model=Liveness, tags=["meta"])
    async def healthz() -> Liveness:
        """Liveness only: answered on the event loop, touching neither the database nor the assessment lock."""
        return Liveness(status="ok")

    @app.get("/v1/status", response_model=Health, tags=["meta"])
    def get_status(client: Annotated[str, Depends(client_of)]) -> Health:
        """Versions, store and limits; the count is read on its own connection (never under the store lock)."""
        st = state()
        return Health(
            status="ok",
            engine_version=__version__,
            policy_version=st.assessor.policy.version,
            policy_hash=st.assessor.policy.hash,
            grid_model_version=st.assessor.region.version,
            region=st.assessor.region.name,
            store=st.store.journal_mode_unlocked(),
            decisions_stored=st.store.count_unlocked(),
            limits={k: float(v) for k, v in vars(limits).items()},
        )

    @app.get("/v1/policy", tags=["policy"])
    def get_policy(client: Annotated[str, Depends(client_of)]) -> dict[str, Any]:
        st = state()
        summary = st.assessor.policy.summary()
        summary["grid_model_version"] = st.assessor.region.version
        summary["region"] = st.assessor.region.summary()
        return summary

    @app.post(
        "/v1/assess",
        tags=["assess"],
        response_model=Decision,
        responses={409: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 401: {"model": ErrorResponse}},
    )
    async def assess(
        notification: Notification,
        client: Annotated[str, Depends(client_of)],
        accept_language: Annotated[str | None, Header()] = None,
        screening: Screening = False,
    ) -> Response:
        if len(notification.appliances) > limits.max_appliances:
            raise RequestValidationError(
                [{"loc": ("body", "appliances"), "msg": _appliance_limit(len(notification.appliances))}]
            )
        lang = language(accept_language)
        if screening:
            if not config.allow_screening:
                return _screening_refused()
            decision = await run_in_threadpool(screen_one, notification)
            return Response(
                content=localize(decision, lang).model_dump_json() if lang != "en" else decision.model_dump_json(),
                media_type="application/json",
                headers={SCREENING_HEADER: "true", REPLAY_HEADER: "false", "Content-Language": lang},
            )
        return await decide_one(notification, client, accept_language)

    async def decide_one(notification: Notification, client: str, accept_language: str | None) -> Response:
        """The answer to ``POST /v1/assess`` for a valid notification within the limits (not a screening)."""
        st = state()
        lang = language(accept_language)
        key = (notification.notification_id, notification.revision)
        # a stored decision is final: a replay (or conflict) is answered without waiting for the engine
        stored = st.store.get_committed([key]).get(key)
        if stored is not None:
            replay = True
        else:
            stored, replay = await st.coalescer.assess(notification, client)
        # a decision this request stored carries this notification's input hash (the engine's); one stored before,
        # or by another request with the same id+revision, is compared (its hash computed only then)
        if replay:
            new_hash = notification.input_hash()
            if stored.input_hash != new_hash:
                return _conflict(stored, new_hash)
        return Response(
            content=_in_language(stored.decision_json, accept_language),
            media_type="application/json",
            headers={REPLAY_HEADER: "true" if replay else "false", "Content-Language": lang},
        )

    def screen_one(notification: Notification) -> Decision:
        st = state()
        with st.lock:
            return st.screen([notification])[0]

    @app.post(
        "/v1/assess/batch",
        tags=["assess"],
        response_model=BatchResponse,
        responses={422: {"model": ErrorResponse}, 401: {"model": ErrorResponse}},
    )
    def assess_batch(
        body: BatchRequest,
        client: Annotated[str, Depends(client_of)],
        accept_language: Annotated[str | None, Header()] = None,
        screening: Screening = False,
    ) -> Response | BatchResponse:
        # one collector pause for the whole batch, ended after its notifications, decisions and items are freed
        # (they are locals of _batch): ending a pause per chunk (the engine's own) collected with the batch alive,
        # walking every object decided so far once per chunk. The English answer is a string by then.
        with gc_paused():
            return _batch(body, client, accept_language, screening)

    def _batch(
        body: BatchRequest, client: str, accept_language: str | None, screening: bool
    ) -> Response | BatchResponse:
        st = state()
        if screening and not config.allow_screening:
            return _screening_refused()
        if len(body.notifications) > limits.max_batch:
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "notifications"),
                        "msg": f"{len(body.notifications)} notifications; at most {limits.max_batch} per batch "
                        "(limit max_batch)",
                    }
                ]
            )
        results: list[tuple[BatchItem, Decision | str | None] | None] = [None] * len(body.notifications)
        valid: list[tuple[int, Notification, str]] = []
        for i, raw in enumerate(body.notifications):
            try:
                n = Notification.model_validate(raw)
            except ValidationError as exc:
                nid = raw.get("notification_id") if isinstance(raw.get("notification_id"), str) else None
                rev = raw.get("revision")
                rev = rev if type(rev) is int and 1 <= rev <= MAX_REVISION else None
                errors = [f"notifications[{i}].{e}" for e in describe_validation_error(exc)]
                invalid = BatchItem(index=i, notification_id=nid, revision=rev, status="invalid", errors=errors)
                results[i] = invalid, None
                continue
            if len(n.appliances) > limits.max_appliances:
                error = f"notifications[{i}].appliances: {_appliance_limit(len(n.appliances))}"
                results[i] = BatchItem(index=i, notification_id=n.notification_id, revision=n.revision,
                                       status="invalid", errors=[error]), None  # fmt: skip
                continue
            valid.append((i, n, n.input_hash()))

        if screening:  # a study: decided on a copy of the ledger, nothing stored
            with st.lock:
                decisions = st.screen([n for _, n, _ in valid]) if valid else []
            for (i, n, _), d in zip(valid, decisions):
                results[i] = BatchItem(index=i, notification_id=n.notification_id, revision=n.revision,
                                       status="decided"), d  # fmt: skip
        else:
            with st.lock:
                settle_batch(valid, results, client)
        items = [r for r in results if r is not None]
        counts: dict[str, int] = {}
        for item, _ in items:
            counts[item.status] = counts.get(item.status, 0) + 1
        lang = language(accept_language)
        if lang != "en":
            final = []
            for item, d in items:
                if d is not None:
                    d = localize(Decision.model_validate_json(d) if isinstance(d, str) else d, lang)
                final.append(item.model_copy(update={"decision": d}))
            return BatchResponse(results=final, counts=counts)
        # in English the stored decisions are sent as stored: no Decision parsed (about 0.7 ms each) or dumped again
        # one join of UTF-8 pieces: the stored JSON (about 14 KB a decision) is copied twice, not five times
        pieces = [b'{"results":[']
        for k, (item, d) in enumerate(items):
            decision = "null" if d is None else d if isinstance(d, str) else d.model_dump_json()
            pieces += (
                b"," if k else b"",
                item.model_dump_json(exclude={"decision", "errors"})[:-1].encode(),
                b',"decision":',
                decision.encode(),
                b',"errors":',
                json.dumps(item.errors, ensure_ascii=False).encode(),
                b"}",
            )
        pieces.append(b'],"counts":' + json.dumps(counts).encode() + b"}")
        return Response(content=b"".join(pieces), media_type="application/json")

    def settle(i: int, stored: StoredDecision, new_hash: str, ours: bool = False) -> tuple[BatchItem, str | None]:
        """The item for a stored row and the stored decision's JSON; ``ours``: this request just stored it."""
        n_id, rev = stored.notification_id, stored.revision
        if stored.input_hash != new_hash:
            return BatchItem(
                index=i,
                notification_id=n_id,
                revision=rev,
                status="conflict",
                errors=[f"notification {n_id} revision {rev} was already decided with other content"],
            ), None
        status_ = "decided" if ours else "replayed"
        return BatchItem(index=i, notification_id=n_id, revision=rev, status=status_), stored.decision_json

    def settle_batch(valid: list[tuple[int, Notification, str]], results: list, client: str) -> None:
        """Decide the new items chunk by chunk (committed per chunk, while the next is decided) and settle every
        valid item."""
        st = state()
        st.commits.drain()  # single assessments decided before this batch are committed (or failed) first
        existing = st.store.get_many((n.notification_id, n.revision) for _, n, _ in valid)
        todo: list[tuple[int, Notification, str]] = []
        later: list[tuple[int, Notification, str]] = []  # repeats of a key inside this batch
        seen: set[tuple[str, int]] = set()
        for i, n, h in valid:
            if n.key in existing:
                results[i] = settle(i, existing[n.key], h)
            elif n.key in seen:
                later.append((i, n, h))
            else:
                seen.add(n.key)
                todo.append((i, n, h))
        chunks = []
        for start in range(0, len(todo), config.chunk_size):
            chunk = todo[start : start + config.chunk_size]
            failed = next((e.error for _, e in chunks if e.done and e.error is not None), None)
            if failed is not None:  # an earlier chunk was not stored: the batch fails (a retry replays the rest)
                raise failed
            _, entry = st.decide([n for _, n, _ in chunk], client, [h for _, _, h in chunk])
            st.coalescer.commit_soon(entry)  # written (in order) while the next chunk is decided
            chunks.append((chunk, entry))
        for chunk, entry in chunks:  # every chunk is on disk before the answer
            for (i, _, h), (stored, ours) in zip(chunk, st.commits.wait(entry)):
                results[i] = settle(i, stored, h, ours)
        if later:
            stored_now = st.store.get_many(n.key for _, n, _ in later)
            for i, n, h in later:
                results[i] = settle(i, stored_now[n.key], h)

    @app.post(
        "/v1/requests/{notification_id}/status",
        tags=["ledger"],
        response_model=RequestView,
        responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}, 401: {"model": ErrorResponse}},
    )
    def set_request_status(
        notification_id: NotificationId, change: StatusChange, client: Annotated[str, Depends(client_of)]
    ) -> Any:
        st = state()
        with st.lock:
            st.commits.drain()  # a request decided just before is on disk before its status changes
            try:
                _, after = st.store.ledger.set_status(notification_id, change.status, actor=client, note=change.note)
            except UnknownRequest as exc:
                return JSONResponse(status_code=404, content={"detail": str(exc), "errors": []})
            except IllegalTransition as exc:
                return JSONResponse(
                    status_code=409,
                    content={"detail": str(exc), "errors": [f"status: {exc.current.value} -> {exc.wanted.value}"]},
                )
            st.assessor.ledger.put(after)
        return RequestView.of(after, st.store.ledger.events(notification_id))

    @app.get(
        "/v1/requests/{notification_id}",
        tags=["ledger"],
        response_model=RequestView,
        responses={404: {"model": ErrorResponse}, 401: {"model": ErrorResponse}},
    )
    def get_request(notification_id: NotificationId, client: Annotated[str, Depends(client_of)]) -> Any:
        st = state()
        try:
            request = st.store.ledger.get(notification_id)
        except UnknownRequest as exc:
            return JSONResponse(status_code=404, content={"detail": str(exc), "errors": []})
        return RequestView.of(request, st.store.ledger.events(notification_id))

    @app.get("/v1/ledger", tags=["ledger"], response_model=list[RequestView])
    def get_ledger(
        client: Annotated[str, Depends(client_of)],
        network: Annotated[str | None, Query(max_length=64, pattern=rf"^{NETWORK_ID_PATTERN.pattern}$")] = None,
        status_: Annotated[RequestStatus | None, Query(alias="status")] = None,
    ) -> list[RequestView]:
        st = state()
        return [RequestView.of(r) for r in st.store.ledger.list(network_id=network, status=status_)]

    @app.get(
        "/v1/decisions/{notification_id}",
        tags=["assess"],
        response_model=Decision,
        responses={404: {"model": ErrorResponse}, 401: {"model": ErrorResponse}},
    )
    def get_decision(
        notification_id: NotificationId,
        client: Annotated[str, Depends(client_of)],
        revision: Revision = None,
        accept_language: Annotated[str | None, Header()] = None,
    ) -> Response:
        st = state()
        if revision is None:
            stored = st.store.latest(notification_id)
        else:
            stored = st.store.get(notification_id, revision)
        if stored is None:
            return JSONResponse(status_code=404, content={"detail": "no stored decision", "errors": []})
        return Response(
            content=_in_language(stored.decision_json, accept_language),
            media_type="application/json",
            headers={"Content-Language": language(accept_language)},
        )

    @app.get(
        "/v1/decisions/{notification_id}/report",
        tags=["assess"],
        response_class=HTMLResponse,
        responses={404: {"model": ErrorResponse}, 401: {"model": ErrorResponse}},
    )
    def get_decision_report(
        notification_id: NotificationId,
        client: Annotated[str, Depends(client_of)],
        revision: Revision = None,
        lang: Annotated[Literal["en", "nb"] | None, Query()] = None,
        accept_language: Annotated[str | None, Header()] = None,
    ) -> Response:
        """The decision as one HTML page (``lang`` or ``Accept-Language``: en or nb)."""
        st = state()
        stored = st.store.latest(notification_id) if revision is None else st.store.get(notification_id, revision)
        if stored is None:
            return JSONResponse(status_code=404, content={"detail": "no stored decision", "errors": []})
        chosen = lang or language(accept_language)
        html = render_report(Decision.model_validate_json(stored.decision_json), chosen)
        return HTMLResponse(content=html, headers={"Content-Language": chosen})

    return app
