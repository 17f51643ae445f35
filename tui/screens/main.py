"""The main screen: every pane, the keys, and the timers that draw engine state.

Views never update per message: the engine publishes into a bounded
notification queue, and a timer on this screen drains it into the panes (at most
10 Hz) and re-reads tables, gauges and performance from engine state (at most 4 Hz),
in the same frame.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer

from engine.control import count_held
from engine.orders import Alert
from engine.stats import Cascade

from ..widgets.alerts import CascadeAlerts
from ..widgets.fmt import price_decimals
from ..widgets.funding import FundingView
from ..widgets.gauges import GaugesView, StrategyGauges
from ..widgets.orders import OrdersTable
from ..widgets.output import OutputPane
from ..widgets.performance import PerformanceView
from ..widgets.positions import PositionsTable, unrealized
from ..widgets.status import StatusBar, StatusFields, clock_text, feed_state, halt_state, loss_limit_state
from ..widgets.tape import LiquidationTape
from .confirm import ConfirmScreen
from .help import HelpScreen
from .pick import StrategyPicker

if TYPE_CHECKING:
    from engine.engine import Engine, NotificationQueue

    from ..app import LiqdeskApp

W = TypeVar("W", bound=Widget)

ALERT_ROWS = 200
MAX_PANE_HZ = 10.0
TABLE_HZ = 4.0  # tables re-render every visible cell on any change: keep them slower (reference/textual.md §4)
STALE_AFTER_S = 10.0  # a running simulated feed with no event for this long shows STALE

@dataclass(frozen=True, slots=True)
class Key:
    keys: str  # default keys, comma-separated
    action: str
    label: str  # in the footer
    help: str  # in the help screen and the command palette


# Binding id -> key. The ids are what [tui.keymap] in the config remaps.
KEYS: dict[str, Key] = {
    "approve": Key("a", "approve", "Approve", "approve the selected pending entry (it goes to the broker)"),
    "approve_all": Key("A", "approve_all", "All", "approve every pending entry"),
    "reject": Key("r", "reject", "Reject", "reject the selected pending entry"),
    "halt": Key("h", "halt", "Halt", "halt new entries; press again to resume (exits, TP and SL still work)"),
    "kill": Key("k", "kill", "Kill",
                "kill switch: cancel every working order, close every position at market, halt (asks first)"),
    "cancel": Key("c", "cancel_order", "Cancel", "cancel the selected working order"),
    "close": Key("x", "close_position", "Close", "close the selected position at market (asks first)"),
    "pause": Key("p", "pause_strategy", "Pause",
                 "pause or resume a strategy: the selected row's, the only one, or pick from a list"),
    "filter": Key("slash,f", "filter_log", "Filter", "filter the output log (Enter keeps the filter, Esc clears it)"),
    "next_pane": Key("tab", "app.focus_next", "Pane", "move to the next pane (shift+tab: previous)"),
    "quit": Key("q", "request_quit", "Quit",
                "quit (asks first if positions are open); working entries are cancelled, TP/SL stay"),
    "help": Key("question_mark", "help", "Help", "this help"),
}


class MainScreen(Screen):
    BINDINGS = [Binding(k.keys, k.action, k.label, id=bid, key_display="/ f" if bid == "filter" else None,
                        show=bid != "next_pane")
                for bid, k in KEYS.items()]

    def __init__(self, engine: Engine, queue: NotificationQueue, *, refresh_hz: float, tape_rows: int,
                 log_lines: int):
        super().__init__()
        self.engine = engine
        self.queue = queue
        self.refresh_hz = min(refresh_hz, MAX_PANE_HZ)
        self.tape_rows = tape_rows
        self.log_lines = log_lines
        self._decimals: dict[str, int] = {}
        self._last_events = -1
        self._last_progress = time.monotonic()
        self._has_approvals = False
        self._ticks = 0
        self._state_every = max(1, math.ceil(self.refresh_hz / TABLE_HZ))

    @property
    def liq_app(self) -> LiqdeskApp:
        return self.app  # type: ignore[return-value]

    # -- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="top"):
            yield self._titled(LiquidationTape(self.tape_rows, self.price_decimals, id="tape"), "Liquidation tape")
            with Vertical(id="right"):
                yield self._titled(CascadeAlerts(ALERT_ROWS, id="alerts"), "Cascade alerts")
                with self._titled(VerticalScroll(id="gauges-pane"), "Gauges"):
                    yield GaugesView(self.engine.symbols, id="gauges")
        yield self._titled(PositionsTable(id="positions"), "Positions")
        with Horizontal(id="bottom"):
            with Vertical(id="bottom-left"):
                yield self._titled(OrdersTable(id="orders"), "Working orders & approval queue")
                yield self._titled(OutputPane(self.log_lines, id="output"), "Output")
            funding = self.engine.strategy("funding_arb") is not None  # funding pane first, then performance
            with self._titled(VerticalScroll(id="perf-pane", can_focus=False),
                              "Funding / performance" if funding else "Performance"):
                if funding:
                    yield FundingView(id="funding")
                yield PerformanceView(id="performance")
        yield Footer(compact=True)

    @staticmethod
    def _titled(widget: W, title: str) -> W:
        widget.border_title = title
        return widget

    def on_mount(self) -> None:
        self.set_interval(1.0 / self.refresh_hz, self.tick)
        self.query_one("#tape").focus()
        self.refresh_all()

    def price_decimals(self, symbol: str) -> int:
        d = self._decimals.get(symbol)
        if d is None:
            d = self._decimals[symbol] = price_decimals(self.engine.instrument(symbol).tick_size)
        return d

    # -- drawing -------------------------------------------------------------------------------
    def tick(self) -> None:
        """One timer, so that one frame carries everything due: the tape and log every tick,
        the tables every few ticks (at most TABLE_HZ)."""
        self._ticks += 1
        with self.app.batch_update():
            self.drain()
            if self._ticks % self._state_every == 0:
                self.refresh_state()

    def drain(self) -> None:
        """Move everything the engine published since the last tick into the panes, in one batch."""
        items = self.queue.drain()
        liqs: list = []
        lines: list[str] = []
        alerts = self.query_one(CascadeAlerts)
        for kind, payload in items:
            if kind == "liquidation":
                liqs.append(payload)
            elif kind == "log":
                lines.append(payload)
            elif kind == "cascade" and isinstance(payload, Cascade):
                alerts.on_cascade(payload)
            elif kind == "cascade_end" and isinstance(payload, Cascade):
                alerts.on_cascade_end(payload)
            elif kind == "alert" and isinstance(payload, Alert):
                alerts.on_alert(payload)
        with self.app.batch_update():
            if liqs:
                self.query_one(LiquidationTape).push(liqs[-self.tape_rows:])
            if lines:
                self.query_one(OutputPane).push(lines)
            self.refresh_status()

    def refresh_status(self) -> None:
        eng = self.engine
        events = eng.stats.events
        now = time.monotonic()
        if events != self._last_events:
            self._last_events = events
            self._last_progress = now
        feed = feed_state(eng, self.liq_app.engine_running, now - self._last_progress < STALE_AFTER_S)
        loss, hit = loss_limit_state(eng)
        self.query_one(StatusBar).show(StatusFields(eng.mode.upper(), feed, halt_state(eng), loss, hit,
                                                    clock_text(eng)))

    def refresh_state(self) -> None:
        """Tables, gauges and performance from engine state (marks move, countdowns tick)."""
        eng = self.engine
        with self.app.batch_update():
            positions = self.query_one(PositionsTable)
            orders = self.query_one(OrdersTable)
            positions.refresh_from(eng)
            orders.refresh_from(eng)
            alerts = self.query_one(CascadeAlerts)
            if alerts.live:  # a live cascade keeps growing: count, notional, duration
                alerts.refresh()
            if orders.has_approvals != self._has_approvals:
                self._has_approvals = orders.has_approvals
                self.refresh_bindings()  # the footer is rebuilt: only on this rare change
            self.query_one(GaugesView).show(
                [StrategyGauges(s.name, s.paused, s.gauges()) for s in eng.strategies])
            equity = eng.portfolio.realized_equity + unrealized(eng)
            self.query_one(PerformanceView).show(eng.portfolio.performance(equity))
            for view in self.query(FundingView):  # only with the funding_arb strategy
                view.show(eng)

    def refresh_all(self) -> None:
        """Everything, now (screenshots and tests)."""
        self.drain()
        self.refresh_state()

    def refresh_now(self) -> None:
        """After a key: the status bar and the log at once; the tables right after that frame."""
        self.drain()
        self.call_after_refresh(self.refresh_state)

    # -- keys ----------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("approve", "approve_all", "reject") and not self._has_approvals:
            return None  # greyed out in the footer while the queue is empty
        return True

    def _on_selected_approval(self, command: Callable[[str], object]) -> None:
        aid = self.query_one(OrdersTable).selected_approval()
        if aid is None:
            self.notify("no pending approval", severity="warning")
            return
        command(aid)
        self.refresh_now()

    def action_approve(self) -> None:
        self._on_selected_approval(self.engine.approve)

    def action_approve_all(self) -> None:
        self.engine.approve_all()
        self.refresh_now()

    def action_reject(self) -> None:
        self._on_selected_approval(self.engine.reject)

    def action_halt(self) -> None:
        if self.engine.halted:
            self.engine.resume()
        else:
            self.engine.halt("manual")
        self.refresh_now()

    def action_kill(self) -> None:
        eng = self.engine
        n_orders, n_pos = len(eng.open_orders), len(eng.portfolio.open_positions())
        held = eng.external_positions()  # funding pairs: both legs of each are closed too
        pos = f"{n_pos} position(s)" + (f" and {count_held(held)}" if held else "")

        def done(yes: bool | None) -> None:
            if yes:
                eng.flatten()
                self.refresh_now()

        self.app.push_screen(ConfirmScreen(
            "KILL SWITCH",
            f"Cancel {n_orders} working order(s), close {pos} at market, and halt new entries.\n"
            "Entries stay halted until you resume (h).", yes="Kill"), done)

    def action_cancel_order(self) -> None:
        oid = self.query_one(OrdersTable).selected_order()
        if oid is None:
            self.notify("no working order selected", severity="warning")
            return
        self.engine.cancel_order(oid, "manual")
        self.refresh_now()

    def action_close_position(self) -> None:
        symbol = self.query_one(PositionsTable).selected_key
        pos = self.engine.portfolio.positions.get(symbol) if symbol else None
        if pos is None or not pos.is_open:
            self.notify("no position selected", severity="warning")
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.engine.close_position(pos.symbol, "manual")
                self.refresh_now()

        self.app.push_screen(ConfirmScreen(
            f"Close {pos.symbol}",
            f"Close the {pos.side} {abs(pos.qty):g} {pos.symbol} position at market and cancel its orders?",
            yes="Close"), done)

    def row_strategy(self) -> str | None:
        """The strategy of the selected row in the focused positions or orders table."""
        focused = self.focused
        if isinstance(focused, PositionsTable | OrdersTable):
            return focused.selected_strategy(self.engine)
        return None

    def _toggle_strategy(self, name: str | None) -> None:
        if name:
            self.engine.pause_strategy(name)
            self.refresh_now()

    def action_pause_strategy(self) -> None:
        """The selected row's strategy; else the only one; else ask which."""
        strategies = self.engine.strategies
        name = self.row_strategy() or (strategies[0].name if len(strategies) == 1 else None)
        if name is not None:
            self._toggle_strategy(name)
        elif not strategies:
            self.notify("no strategy is running", severity="warning")
        else:
            self.app.push_screen(StrategyPicker([(s.name, s.paused) for s in strategies]), self._toggle_strategy)

    def action_filter_log(self) -> None:
        self.query_one(OutputPane).open_filter()

    def action_request_quit(self) -> None:
        self.liq_app.request_quit()

    def action_help(self) -> None:
        keymap = self.liq_app.keymap
        rows = [((keymap.get(bid) or k.keys).replace("question_mark", "?").replace("slash", "/"), k.help, bid)
                for bid, k in KEYS.items()]
        self.app.push_screen(HelpScreen(rows))
