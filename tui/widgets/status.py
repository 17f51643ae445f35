"""Status bar: mode (LIVE in red), feed state, halt/flatten state, loss-limit state, clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label

from .fmt import fmt_datetime

if TYPE_CHECKING:
    from engine.engine import Engine

FEED_STATES = ("RECONNECTING", "STALE", "LIVE")  # worst first
STALE_LIKE = {"REJECTED"}  # a topic the venue refused: its data is missing, as if stale


def feed_state(engine: Engine, running: bool, progressing: bool) -> str:
    """Worst state reported by live feeds; for simulated feeds, whether events are still flowing."""
    states = {"STALE" if s in STALE_LIKE else s for s in (str(v).upper() for v in engine.feed_states.values())}
    for s in FEED_STATES:
        if s in states:
            return s
    if not running:
        return "STOPPED"
    return "LIVE" if progressing else "STALE"


def halt_state(engine: Engine) -> str:
    if engine.flattening:
        return "FLAT · HALTED" if engine.flat_confirmed else "FLATTENING"
    if engine.halted:
        return f"HALTED ({engine.halt_reason})" if engine.halt_reason else "HALTED"
    return "TRADING"


@dataclass(slots=True, frozen=True)
class StatusFields:
    mode: str
    feed: str
    halt: str
    loss: str
    loss_hit: bool
    clock: str


class StatusBar(Horizontal):
    """One line; each field is a label so that CSS classes colour it (LIVE, HALTED, STALE...)."""

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.fields: StatusFields | None = None

    def compose(self) -> ComposeResult:
        yield Label(id="st-mode")
        yield Label(id="st-feed")
        yield Label(id="st-halt")
        yield Label(id="st-loss")
        yield Label(id="st-clock")

    def show(self, f: StatusFields) -> None:
        """Touch only the labels whose text changed (an update may cost a layout pass)."""
        old = self.fields
        if f == old:
            return
        self.fields = f
        if old is None or f.mode != old.mode:
            mode = self.query_one("#st-mode", Label)
            mode.update(f" {f.mode} ")
            mode.set_class(f.mode == "LIVE", "-live")
        if old is None or f.feed != old.feed:
            feed = self.query_one("#st-feed", Label)
            feed.update(f"feed {f.feed}")
            feed.set_class(f.feed != "LIVE", "-warn")
        if old is None or f.halt != old.halt:
            halt = self.query_one("#st-halt", Label)
            halt.update(f.halt)
            halt.set_class(f.halt != "TRADING", "-halted")
        if old is None or (f.loss, f.loss_hit) != (old.loss, old.loss_hit):
            loss = self.query_one("#st-loss", Label)
            loss.update(f.loss)
            loss.set_class(f.loss_hit, "-halted")
        if old is None or f.clock != old.clock:
            self.query_one("#st-clock", Label).update(f.clock, layout=old is None)  # fixed width: no layout


def loss_limit_state(engine: Engine) -> tuple[str, bool]:
    """(text, entries blocked) from the risk gate's description: the daily and weekly loss
    against their limits, or which limit stops entries and until when."""
    describe = getattr(engine.risk, "describe", None)
    if not callable(describe):
        return "loss limits: off", False
    d = describe(engine.clock.now())
    blocked = str(d.get("entries_blocked", ""))
    if blocked:
        return f"LOSS LIMIT: {blocked}", True
    parts = [f"{label} {w['loss_pct']:.2f}/{w['limit_pct']:g}%" for name, label in (("daily", "day"), ("weekly", "wk"))
             if isinstance(w := d.get(name), dict)]
    return "loss " + " ".join(parts) if parts else "loss limits ok", False


def clock_text(engine: Engine) -> str:
    return fmt_datetime(engine.clock.now())
