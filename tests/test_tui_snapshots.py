"""Snapshot tests (pytest-textual-snapshot) of the console on the scripted, seeded demo session
with a fixed simulated clock: the main screen, a pending approval, the kill confirmation and
the 80x24 layout (the same four pictures `liqdesk screenshots` writes).

After an intended change of the screens: `pytest tests/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import pytest

from tui.screenshots import SHOTS, Shot, demo_app


@pytest.mark.parametrize("shot", SHOTS, ids=lambda s: s.filename.removesuffix(".svg"))
def test_console_snapshot(snap_compare, shot: Shot):
    assert snap_compare(demo_app(shot.approval), terminal_size=shot.size, run_before=shot.prepare)
