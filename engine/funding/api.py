"""The funding service over HTTP: FastAPI (OpenAPI at /openapi.json) on uvicorn, served as a
task in the engine's own asyncio loop (`liqdesk run --headless --api HOST:PORT`).

* GET /opportunities?symbol=&min_profit=&max_oi_usd=&prioritize_dexes=a,b  (ranked)
* GET /opportunities/best (same filters; 404 while there is none)
* GET /rates/compare?symbol=&dex1=&dex2=  (dex1 as the long leg, dex2 as the short)
* GET /positions  (the funding_arb client's pairs: open, in flight, recently closed)
* GET /health

Binding: a loopback address (127.0.0.0/8, ::1, localhost) needs nothing; any other address
needs `funding_arb.api_token` (or LIQDESK_FUNDING_ARB__API_TOKEN), else the run is refused
before it starts. With a token, every request must carry it (`Authorization: Bearer TOKEN` or
`X-API-Token: TOKEN`), loopback too; a missing or wrong one gets 401. The token is never logged.
uvicorn's own signal handlers are not installed (the engine's stay in charge) and it writes no
access log; the socket is bound before the server starts so that a bind error is one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ..config import ConfigError, Settings
from .service import FundingService, service_for

DEFAULT_BIND = "127.0.0.1:8700"


# -- binding ---------------------------------------------------------------------------------------
def parse_bind(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT, PORT (on 127.0.0.1) or "default" (127.0.0.1:8700)."""
    t = text.strip()
    if t == "default":
        t = DEFAULT_BIND
    host, sep, port = t.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", t
    host = host.strip("[]") or "127.0.0.1"
    try:
        p = int(port)
    except ValueError:
        p = -1
    if not 0 <= p <= 65535:
        raise ConfigError(f"config error: --api = {text!r}: use HOST:PORT, e.g. {DEFAULT_BIND}")
    return host, p


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(text: str, settings: Settings) -> tuple[str, int]:
    host, port = parse_bind(text)
    token = settings.funding_arb.api_token
    if not is_loopback(host) and (token is None or not token.get_secret_value()):
        raise ConfigError(f"config error: --api = {text!r} binds a non-loopback address: set funding_arb.api_token "
                          "(or LIQDESK_FUNDING_ARB__API_TOKEN) or bind 127.0.0.1")
    return host, port


# -- schema ------------------------------------------------------------------------------------------
class Rate(BaseModel):
    venue: str
    symbol: str
    rate: float
    interval_h: float
    rate_per_hour: float
    annualized: float
    next_funding_time_ms: int
    mark_price: float
    open_interest_usd: float
    observed_ms: int


class OpportunityOut(BaseModel):
    symbol: str
    long_dex: str
    short_dex: str
    long_rate: float
    short_rate: float
    long_interval_h: float
    short_interval_h: float
    long_rate_per_hour: float
    short_rate_per_hour: float
    divergence_per_hour: float
    divergence_annualized: float
    expected_profit: float
    long_oi_usd: float
    short_oi_usd: float
    long_mark: float
    short_mark: float
    long_next_funding_ms: int
    short_next_funding_ms: int
    long_is_dex: bool
    short_is_dex: bool


class Compare(BaseModel):
    symbol: str
    dex1: Rate
    dex2: Rate
    divergence_per_hour: float
    divergence_annualized: float
    long_dex: str
    short_dex: str
    oi_ratio: float | None


class PositionOut(BaseModel):
    id: str
    symbol: str
    long_dex: str
    short_dex: str
    size_usd: float
    entry_long_rate: float
    entry_short_rate: float
    entry_divergence: float
    opened_at_ms: int
    last_check_ms: int
    status: str
    hours_held: float
    funding_usd: float
    fees_usd: float
    close_reason: str


class VenueOut(BaseModel):
    name: str
    adapter: str
    is_dex: bool
    status: str
    error: str
    symbols: int
    errors: int
    last_ok_ms: int


class Health(BaseModel):
    status: str
    engine_time_ms: int
    mode: str
    halted: bool
    collections: int
    last_collect_ms: int
    check_interval_seconds: float
    opportunities: int
    source: str
    symbols: list[str]
    venues: list[VenueOut]


class Error(BaseModel):
    detail: str


# -- the app -----------------------------------------------------------------------------------------
def create_app(svc: FundingService, engine: Any = None, token: str = "") -> FastAPI:
    app = FastAPI(title="liqdesk funding service", version="1.0",
                  description="Funding rates across venues, normalized per hour, and ranked arbitrage "
                              "opportunities (docs/strategies/funding-arb.md).")

    if token:
        expected = token.encode()

        @app.middleware("http")
        async def _auth(request: Request, call_next):
            auth = request.headers.get("authorization", "")
            given = auth[7:] if auth.lower().startswith("bearer ") else request.headers.get("x-api-token", "")
            if not hmac.compare_digest(given.encode(), expected):
                return JSONResponse({"detail": "missing or wrong API token"}, status_code=401)
            return await call_next(request)

    def filters(symbol: str | None, min_profit: float | None, max_oi_usd: float | None,
                prioritize_dexes: str | None) -> dict[str, Any]:
        pri = [d.strip() for d in (prioritize_dexes or "").split(",") if d.strip()]
        return {"symbol": symbol or None, "min_profit": min_profit, "max_oi_usd": max_oi_usd, "prioritize_dexes": pri}

    Sym = Query(None, max_length=40, description="BTC or BTCUSDT")
    MinP = Query(None, ge=-1.0, le=1.0, allow_inf_nan=False, description="expected profit, fraction of size")
    MaxOi = Query(None, ge=0, allow_inf_nan=False, description="both legs' open interest at or below, USD")
    Pri = Query(None, max_length=500, description="comma-separated venue names ranked first")

    @app.get("/opportunities", response_model=list[OpportunityOut])
    def opportunities(symbol: str | None = Sym, min_profit: float | None = MinP, max_oi_usd: float | None = MaxOi,
                      prioritize_dexes: str | None = Pri) -> list[dict]:
        return [o.as_dict() for o in svc.opportunities(**filters(symbol, min_profit, max_oi_usd, prioritize_dexes))]

    @app.get("/opportunities/best", response_model=OpportunityOut, responses={404: {"model": Error}})
    def best(symbol: str | None = Sym, min_profit: float | None = MinP, max_oi_usd: float | None = MaxOi,
             prioritize_dexes: str | None = Pri) -> dict:
        o = svc.best(**filters(symbol, min_profit, max_oi_usd, prioritize_dexes))
        if o is None:
            raise HTTPException(404, "no opportunity matches")
        return o.as_dict()

    @app.get("/rates/compare", response_model=Compare, responses={404: {"model": Error}})
    def compare(symbol: str = Query(..., max_length=40), dex1: str = Query(..., max_length=60),
                dex2: str = Query(..., max_length=60)) -> dict:
        out = svc.compare(symbol, dex1, dex2)
        if out is None:
            raise HTTPException(404, f"no current rates for {symbol} on {dex1} and {dex2}")
        return out

    @app.get("/positions", response_model=list[PositionOut])
    def positions() -> list[dict]:
        return svc.positions()

    @app.get("/health", response_model=Health)
    def health() -> dict:
        d = svc.describe()
        return {"status": "ok", "engine_time_ms": engine.clock.now() // 1_000_000 if engine is not None else 0,
                "mode": getattr(engine, "mode", ""), "halted": bool(getattr(engine, "halted", False)), **d}

    return app


class _Server(uvicorn.Server):
    """uvicorn without its signal handling: the engine's handlers stay installed."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn
        return None


class ApiService:
    """The HTTP API as a service of a running engine (runtime.start_services)."""

    def __init__(self, server: _Server, task: asyncio.Task, arm: asyncio.Task | None, sock: socket.socket):
        self.server = server
        self.task = task
        self.arm = arm
        self.sock = sock

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    @classmethod
    async def start(cls, engine: Any, settings: Settings, bind: str) -> ApiService:
        host, port = check_bind(bind, settings)
        sock = bind_socket(host, port, bind)
        token = settings.funding_arb.api_token
        svc = service_for(engine)
        app = create_app(svc, engine, token.get_secret_value() if token is not None else "")
        return cls.serve(app, sock, engine, svc)

    @classmethod
    def serve(cls, app: FastAPI, sock: socket.socket, engine: Any = None, svc: FundingService | None = None
              ) -> ApiService:
        config = uvicorn.Config(app, lifespan="off", access_log=False, log_config=None, log_level="warning")
        server = _Server(config)
        loop = asyncio.get_running_loop()
        task = loop.create_task(server.serve(sockets=[sock]))
        arm = loop.create_task(_arm_when_clock_runs(engine, svc)) if engine is not None and svc else None
        return cls(server, task, arm, sock)

    async def stop(self) -> None:
        if self.arm is not None:
            self.arm.cancel()
        self.server.should_exit = True
        try:
            await asyncio.wait_for(self.task, 5.0)
        except (TimeoutError, asyncio.CancelledError):
            self.task.cancel()
        self.sock.close()


def bind_socket(host: str, port: int, text: str = "") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"config error: --api = {text or f'{host}:{port}'!r}: cannot bind ({exc.strerror})") from None
    sock.set_inheritable(True)
    return sock


async def _arm_when_clock_runs(engine: Any, svc: FundingService) -> None:
    """Start collecting once the engine's clock has started (a simulated clock starts at its first event)."""
    while not svc.started:
        svc.ensure_started(engine.clock.now())
        await asyncio.sleep(0.2)
