"""The funding API over real HTTP on 127.0.0.1: every endpoint, a schemathesis run from its
OpenAPI schema (no 5xx), the token, and the refusal of a public bind without one."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import schemathesis
from funding_helpers import T0, make_service, three_venues
from hypothesis import HealthCheck, settings

from engine.config import ConfigError, load_config
from engine.funding.api import ApiService, bind_socket, check_bind, create_app, parse_bind

POSITIONS = [{"id": "6f1c9d1e-0000-4000-8000-000000000001", "symbol": "BTCUSDT", "long_dex": "a", "short_dex": "b",
              "size_usd": 2500.0, "entry_long_rate": 1e-5, "entry_short_rate": 5e-5, "entry_divergence": 4e-5,
              "opened_at_ms": T0 // 10**6, "last_check_ms": T0 // 10**6, "status": "open", "hours_held": 0.0,
              "funding_usd": 0.0, "fees_usd": 1.0, "close_reason": ""}]


class ServerThread:
    """The API app on uvicorn in its own thread and loop, bound to 127.0.0.1 on a free port."""

    def __init__(self, token: str = ""):
        self.svc = make_service(three_venues())
        self.svc.collect(T0)
        self.svc.positions = lambda: POSITIONS
        self.app = create_app(self.svc, None, token)
        self.sock = bind_socket("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            self.api = ApiService.serve(self.app, self.sock)
            self.ready.set()
            await self.api.task

        self.loop.run_until_complete(main())

    def __enter__(self):
        self.thread.start()
        self.ready.wait(5)
        for _ in range(100):
            try:
                httpx.get(self.url + "/health", timeout=1, headers={"x-api-token": "x"})
                break
            except httpx.TransportError:
                time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.api.server.should_exit = True
        self.thread.join(5)


@pytest.fixture(scope="module")
def server():
    with ServerThread() as s:
        yield s


def test_every_endpoint_answers(server):
    c = httpx.Client(base_url=server.url, timeout=5)
    h = c.get("/health").json()
    assert h["status"] == "ok" and h["collections"] == 1 and {v["name"] for v in h["venues"]} == {"a", "b", "c"}
    ops = c.get("/opportunities").json()
    assert len(ops) == 6 and ops[0]["long_dex"] == "a" and ops[0]["short_dex"] == "b"
    assert ops[0]["divergence_per_hour"] == pytest.approx(4e-5)
    assert ops[0]["divergence_annualized"] == pytest.approx(4e-5 * 8760)
    assert [o["expected_profit"] for o in ops] == sorted((o["expected_profit"] for o in ops), reverse=True)
    got = c.get("/opportunities", params={"symbol": "BTC", "min_profit": 0.0001, "max_oi_usd": 5e9,
                                          "prioritize_dexes": "c"}).json()
    assert [(o["symbol"], o["long_dex"], o["short_dex"]) for o in got] == [("BTCUSDT", "a", "b")]
    assert c.get("/opportunities", params={"max_oi_usd": 5e8, "prioritize_dexes": "b,c"}).json()[0]["long_dex"] == "c"
    assert c.get("/opportunities/best").json()["short_dex"] == "b"
    assert c.get("/opportunities/best", params={"symbol": "ETH"}).json()["symbol"] == "ETHUSDT"
    assert c.get("/opportunities/best", params={"min_profit": 0.5}).status_code == 404
    cmp = c.get("/rates/compare", params={"symbol": "BTC", "dex1": "a", "dex2": "c"}).json()
    assert cmp["dex1"]["interval_h"] == 8.0 and cmp["dex2"]["interval_h"] == 4.0
    assert cmp["divergence_per_hour"] == pytest.approx(1e-5)
    assert c.get("/rates/compare", params={"symbol": "BTC", "dex1": "a", "dex2": "zz"}).status_code == 404
    assert c.get("/rates/compare", params={"symbol": "BTC"}).status_code == 422
    assert c.get("/opportunities", params={"min_profit": "lots"}).status_code == 422
    assert c.get("/positions").json() == POSITIONS
    schema = c.get("/openapi.json").json()
    assert {"/opportunities", "/opportunities/best", "/rates/compare", "/positions", "/health"} <= set(schema["paths"])


def _fuzz_schema():
    return schemathesis.openapi.from_dict(create_app(make_service(three_venues())).openapi())


fuzz_schema = _fuzz_schema()


@fuzz_schema.parametrize()
@settings(max_examples=12, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_schema_fuzz_has_no_server_errors(case, server):
    response = case.call(base_url=server.url, timeout=5)
    assert response.status_code < 500, (case.path, case.query, response.text)
    case.validate_response(response)


def test_token_is_checked_on_every_request():
    with ServerThread(token="s3cret-token") as s:
        for path in ("/health", "/opportunities", "/openapi.json", "/positions"):
            assert httpx.get(s.url + path).status_code == 401
            assert httpx.get(s.url + path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(s.url + "/health", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert httpx.get(s.url + "/positions", headers={"X-API-Token": "s3cret-token"}).status_code == 200


def test_bind_rules():
    s = load_config(None)
    assert parse_bind("default") == ("127.0.0.1", 8700)
    assert parse_bind("8701") == ("127.0.0.1", 8701)
    assert parse_bind("[::1]:8702") == ("::1", 8702)
    assert check_bind("localhost:1", s) == ("localhost", 1)
    for bad in ("0.0.0.0:8700", "192.168.1.5:80", "example.com:80", "[::]:8700"):
        with pytest.raises(ConfigError, match="non-loopback"):
            check_bind(bad, s)
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_bind("127.0.0.1:http")
    with_token = load_config(None, {"funding_arb": {"api_token": "t"}})
    assert check_bind("0.0.0.0:8700", with_token) == ("0.0.0.0", 8700)
    assert with_token.public_dict()["funding_arb"]["api_token"] != "t"


def test_public_bind_without_token_is_refused_before_start(tmp_path):
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "engine.cli", "run", "--headless", "--strategies", "funding_arb",
                        "--duration", "10", "--api", "0.0.0.0:8799", "--db", str(tmp_path / "x.db")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert p.returncode == 2
    lines = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and "non-loopback" in lines[0] and "api_token" in lines[0]
    assert not (tmp_path / "x.db").exists()  # refused before anything started
    assert time.monotonic() - t0 < 60


async def test_api_runs_in_the_engine_loop_without_taking_its_signals(tmp_path):
    """The headless wiring: the API as an engine service; the engine's signal handler stays."""
    from engine.runtime import RunOptions, build_engine, start_services, stop_services
    settings = load_config(None, {"engine": {"log_file": ""}})
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    opts = RunOptions(strategies=["funding_arb"], duration_s=600, db=str(tmp_path / "f.db"),
                      extra={"api": f"127.0.0.1:{port}"})
    engine, feeds = build_engine(settings, opts, output=lambda line: None)
    loop = asyncio.get_running_loop()
    stopped = []
    loop.add_signal_handler(signal.SIGTERM, lambda: stopped.append(1))
    before = signal.getsignal(signal.SIGTERM)
    services = await start_services(engine, settings, opts, feeds)
    try:
        await engine.run(feeds, duration_s=600)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
            h = (await c.get("/health")).json()
            assert h["collections"] >= 10 and h["source"] == "synthetic"
            assert len((await c.get("/opportunities")).json()) == 5 * 15  # 5 symbols x 15 venue pairs
            assert (await c.get("/opportunities/best")).status_code == 200
        assert signal.getsignal(signal.SIGTERM) == before
    finally:
        await stop_services(engine, services)
        loop.remove_signal_handler(signal.SIGTERM)
