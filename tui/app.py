"""The console: a Textual app over the engine.

The engine runs inside the app as a worker on the same asyncio loop. Views read
the engine's notifications and state on screen timers and call its commands;
no trading logic lives here. Quitting (q, ctrl+q) and a dropped SSH session
(SIGHUP) or SIGTERM stop the same way: working entries cancelled, TP/SL left
in place, the engine stopped and its services (store) closed, then exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from engine.config import ConfigError, Settings
from engine.control import count_held
from engine.engine import Engine
from engine.runtime import LineSink, RunOptions, build_engine, start_services, stop_services
from engine.store import inspect_file

from .screens.confirm import ConfirmScreen, LiveConfirmScreen
from .screens.main import KEYS, MainScreen

UI_YIELD_EVERY = 25  # events dispatched between turns of the loop the UI shares (~1-2 ms of work)
CANCEL_WAIT_S = 2.0  # how long a clean stop waits for the broker to confirm entry cancels
HANGUP_SIGNALS = (signal.SIGHUP, signal.SIGTERM)


def _discard(data: str) -> None:
    return None


def validate_keymap(keymap: dict[str, str]) -> dict[str, str]:
    """Binding id -> keys from [tui.keymap]; unknown ids and keys bound twice are config errors."""
    for bid, keys in keymap.items():
        if bid not in KEYS:
            raise ConfigError(f"config error: tui.keymap.{bid} = {keys!r}: unknown key binding id; "
                              f"allowed: {', '.join(KEYS)}")
        if not keys.strip():
            raise ConfigError(f"config error: tui.keymap.{bid} = {keys!r}: give at least one key")
    owner: dict[str, str] = {}
    for bid, k in KEYS.items():
        for key in (keymap.get(bid) or k.keys).split(","):
            key = key.strip()
            if key in owner:
                raise ConfigError(f"config error: tui.keymap: key {key!r} is bound to both {owner[key]} and {bid}")
            owner[key] = bid
    return dict(keymap)


class LiqdeskApp(App[None]):
    CSS_PATH = Path(__file__).parent / "app.tcss"  # absolute: subclasses live in other packages
    TITLE = "liqdesk"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]

    def __init__(self, engine: Engine, feeds: list[Any] | None = None, *, settings: Settings,
                 opts: RunOptions | None = None, freeze_gc: bool = False):
        """`feeds` None: the engine is not run here (tests, screenshots drive it by hand).
        `freeze_gc`: this process is the console (not a test run), see `on_ready`."""
        super().__init__()
        self.freeze_gc = freeze_gc
        self.engine = engine
        self.feeds = feeds
        self.settings = settings
        self.opts = opts or RunOptions(mode=engine.mode)
        self.keymap = validate_keymap(settings.tui.keymap)
        self.queue = engine.notifier.subscribe(settings.engine.notification_queue)
        self.engine_worker: Worker | None = None
        self.stopping = False
        self.animation_level = "none"

    def get_default_screen(self) -> Screen:
        tui = self.settings.tui
        return MainScreen(self.engine, self.queue, refresh_hz=tui.refresh_hz, tape_rows=tui.tape_rows,
                          log_lines=tui.log_lines)

    def on_mount(self) -> None:
        self.set_keymap(self.keymap)
        loop = asyncio.get_running_loop()
        for sig in HANGUP_SIGNALS:
            try:
                loop.add_signal_handler(sig, self.on_hangup, sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not Unix, or not the main thread
                pass

    def on_ready(self) -> None:
        """The main screen is up: start the engine (after the typed confirmation in live mode)."""
        if self.feeds is not None:
            if self.engine.mode == "live":
                self.push_screen(LiveConfirmScreen(), self._live_answered)
            else:
                self.start_engine()
        if self.freeze_gc:
            # Everything built so far (engine, widgets, Textual) lives as long as the process:
            # keep the collector from rescanning it. A full collection under load took up to
            # 140 ms here, a stall every key press and frame waited for; frozen, about 30 ms.
            gc.freeze()

    def on_unmount(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in HANGUP_SIGNALS:
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover
                pass
        self.engine.notifier.unsubscribe(self.queue)

    def _live_answered(self, confirmed: bool | None) -> None:
        if confirmed:
            self.start_engine()
        else:
            self.exit(return_code=1, message="live trading not confirmed: nothing was sent")

    # -- the engine ----------------------------------------------------------------------------
    def start_engine(self) -> None:
        self.engine_worker = self.run_worker(self._run_engine(), name="engine", group="engine",
                                             exit_on_error=False)

    async def _run_engine(self) -> None:
        eng, feeds = self.engine, self.feeds or []
        services = await start_services(eng, self.settings, self.opts, feeds)
        try:
            if any(getattr(f, "live", False) for f in feeds):
                await eng.run_live(feeds)
            else:
                await eng.run(feeds, speed=self.opts.speed, yield_every=UI_YIELD_EVERY)
        finally:
            await stop_services(eng, services)

    @property
    def engine_running(self) -> bool:
        w = self.engine_worker
        return w is not None and w.state in (WorkerState.PENDING, WorkerState.RUNNING)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self.engine_worker or event.state is not WorkerState.ERROR:
            return
        err = event.worker.error
        if isinstance(err, ConfigError):  # e.g. a corrupt or foreign database: as headless, one line and 2
            self.exit(return_code=2, message=Text(str(err)))
            return
        self.engine.log(f"ENGINE STOPPED on error: {type(err).__name__}: {err}", "error")
        self.notify(f"engine stopped: {err}", severity="error", timeout=30)

    # -- stopping ------------------------------------------------------------------------------
    def request_quit(self) -> None:
        """`q`: quit at once when flat, else ask first (positions keep their TP and SL)."""
        n = len(self.engine.portfolio.open_positions())
        held = self.engine.external_positions()  # funding pairs stay open on their venues too
        if not n and not held:
            self.run_worker(self.stop_and_exit("quit"), group="stop")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self.stop_and_exit("quit"), group="stop")

        lines = [f"{n} position(s) are open. They stay open with their TP and SL orders in place;"] if n else []
        if held:
            lines.append(f"{count_held(held)} stay open on their venues (the kill switch closes them);")
        lines.append("working entry orders are cancelled and the engine stops.")
        self.push_screen(ConfirmScreen("Quit with open positions?", "\n".join(lines), yes="Quit"), answered)

    async def action_quit(self) -> None:
        self.request_quit()

    def on_hangup(self, sig: int) -> None:
        """SIGHUP (SSH dropped) or SIGTERM: stop exactly as `q` does, without asking."""
        if sig == signal.SIGHUP:
            self.detach_terminal()
        self.run_worker(self.stop_and_exit(signal.Signals(sig).name), group="stop")

    def detach_terminal(self) -> None:
        """The terminal hung up: every write to it fails, and Textual's writer thread dies with
        a full queue that would block the shutdown forever. Drop all output from now on, so the
        app can stop through its normal path (engine, store, exit code)."""
        driver = self._driver
        if driver is None:
            return
        driver.write = _discard  # type: ignore[method-assign]
        if getattr(driver, "_writer_thread", None) is not None:
            driver._writer_thread = None  # close() would wait on the dead thread's queue

    async def stop_and_exit(self, reason: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        await self.shutdown_engine(reason)
        self.exit(return_code=0)

    async def shutdown_engine(self, reason: str) -> None:
        eng = self.engine
        n = eng.cancel_entries(f"console {reason}")
        eng.log(f"console stopping ({reason}): cancelling {n} working entries; TP/SL orders stay in place")
        worker = self.engine_worker
        if worker is None or not self.engine_running:
            return
        deadline = time.monotonic() + CANCEL_WAIT_S
        while eng.working_entries and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the engine loop keeps running so the broker can confirm
        eng.stop()
        with contextlib.suppress(Exception):  # an engine that failed has already said so in the log
            await asyncio.wait_for(worker.wait(), timeout=10.0)

    # -- command palette -----------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, MainScreen):
            for bid, k in KEYS.items():
                shown = self.keymap.get(bid) or k.keys
                yield SystemCommand(k.help[0].upper() + k.help[1:], f"key: {shown}",
                                    partial(screen.run_action, k.action))


def run_console(settings: Settings, opts: RunOptions) -> int:
    """`liqdesk` / `liqdesk run`: build the engine, then run the console over it."""
    validate_keymap(settings.tui.keymap)  # a bad keymap is a config error before anything starts
    if opts.db and Path(opts.db).exists():
        inspect_file(Path(opts.db))  # a corrupt, foreign or newer database: one line, exit 2, file untouched
    log_path = Path(settings.engine.log_file) if settings.engine.log_file else None
    with open(os.devnull, "w", encoding="utf-8") as devnull:  # the terminal belongs to the console
        sink = LineSink(log_path, stream=devnull)
        try:
            engine, feeds = build_engine(settings, opts, output=sink)
            app = LiqdeskApp(engine, feeds, settings=settings, opts=opts, freeze_gc=True)
            app.run()
        finally:
            sink.close()
    return app.return_code or 0
