"""Columnar cache of imported events: convert a file once, replay it fast afterwards.

A cache is a directory holding `meta.json` and numbered `part-NNNNN.npz` files (uncompressed
numpy archives, no pickles). Each part holds up to PART_EVENTS events as one table per event
type, with one column per dataclass field:

* int / float fields: int64 / float64 columns; `float | None` uses NaN and `int | None` uses
  INT_NONE for None;
* str fields: dictionary-encoded (int32 codes + a utf-8 blob of the distinct values);
* level lists (`list[tuple[float, ...]]`): a per-event count plus one flat float64 column per
  tuple position.

Parts are written in file order plus, when the file is not already in replay order, an
`order` permutation: a stable sort on the replay key (arrival time `recv_ts` when the source
has one, else exchange time `ts`), then the importer's tie-break. A file that runs newest-first
is reversed exactly instead, so rows sharing a timestamp keep their true order. Replay walks
the parts in key order and k-way merges only the parts whose key ranges overlap; a time-ordered
file therefore streams one part at a time.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import os
import shutil
import tempfile
from array import array
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ...events import EVENT_TYPES
from .base import ImportReport

CACHE_VERSION = 1
PART_EVENTS = 200_000
INT_NONE = np.iinfo(np.int64).min
TYPES_BY_NAME: dict[str, type] = {t.__name__: t for t in EVENT_TYPES}


def replay_key(ev: Any) -> int:
    """Arrival time when recorded, else exchange time."""
    return ev.recv_ts or ev.ts


# -- per-field codecs -------------------------------------------------------------------------------


class _Column:
    """Accumulates one field of one event type and writes/reads it as numpy arrays."""

    def __init__(self, name: str):
        self.name = name

    def add(self, value: Any) -> None:
        raise NotImplementedError

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        raise NotImplementedError


class _IntColumn(_Column):
    def __init__(self, name: str, optional: bool):
        super().__init__(name)
        self.optional = optional
        self.values = array("q")

    def add(self, value: Any) -> None:
        self.values.append(INT_NONE if value is None else int(value))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {prefix: np.frombuffer(self.values, dtype=np.int64).copy()}

    @staticmethod
    def decode(data: dict[str, np.ndarray], prefix: str, optional: bool) -> list:
        values = data[prefix].tolist()
        if optional:
            return [None if v == INT_NONE else v for v in values]
        return values


class _FloatColumn(_Column):
    def __init__(self, name: str, optional: bool):
        super().__init__(name)
        self.optional = optional
        self.values = array("d")

    def add(self, value: Any) -> None:
        self.values.append(float("nan") if value is None else float(value))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {prefix: np.frombuffer(self.values, dtype=np.float64).copy()}

    @staticmethod
    def decode(data: dict[str, np.ndarray], prefix: str, optional: bool) -> list:
        values = data[prefix].tolist()
        if optional:
            return [None if v != v else v for v in values]
        return values


class _StrColumn(_Column):
    def __init__(self, name: str):
        super().__init__(name)
        self.codes = array("i")
        self.index: dict[str, int] = {}

    def add(self, value: Any) -> None:
        code = self.index.get(value)
        if code is None:
            code = self.index[value] = len(self.index)
        self.codes.append(code)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        encoded = [v.encode("utf-8") for v in self.index]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        blob = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        return {
            prefix: np.frombuffer(self.codes, dtype=np.int32).copy(),
            prefix + ".blob": blob,
            prefix + ".off": offsets,
        }

    @staticmethod
    def values_table(data: dict[str, np.ndarray], prefix: str) -> list[str]:
        blob = data[prefix + ".blob"].tobytes()
        off = data[prefix + ".off"].tolist()
        return [blob[off[i] : off[i + 1]].decode("utf-8") for i in range(len(off) - 1)]

    @classmethod
    def decode(cls, data: dict[str, np.ndarray], prefix: str) -> list:
        table = cls.values_table(data, prefix)
        return [table[c] for c in data[prefix].tolist()]


class _LevelsColumn(_Column):
    """A list of fixed-width float tuples per event (book levels, depth bands)."""

    def __init__(self, name: str, width: int):
        super().__init__(name)
        self.width = width
        self.counts = array("q")
        self.cols = [array("d") for _ in range(width)]

    def add(self, value: Any) -> None:
        self.counts.append(len(value))
        flat = list(itertools.chain.from_iterable(value))
        w = self.width
        for i, c in enumerate(self.cols):
            c.extend(flat[i::w])

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {prefix + ".n": np.frombuffer(self.counts, dtype=np.int64).copy()}
        for i, c in enumerate(self.cols):
            out[f"{prefix}.{i}"] = np.frombuffer(c, dtype=np.float64).copy()
        return out

    @staticmethod
    def decode(data: dict[str, np.ndarray], prefix: str, width: int) -> list:
        counts = data[prefix + ".n"].tolist()
        flat = [data[f"{prefix}.{i}"].tolist() for i in range(width)]
        out = []
        pos = 0
        if width == 2:
            c0, c1 = flat
            for n in counts:
                end = pos + n
                out.append(list(zip(c0[pos:end], c1[pos:end])))
                pos = end
        else:
            for n in counts:
                end = pos + n
                out.append(list(zip(*(c[pos:end] for c in flat))))
                pos = end
        return out


def _field_codec(annotation: str) -> tuple[str, Any]:
    a = annotation.replace(" ", "")
    if a == "int":
        return "int", False
    if a in ("int|None", "None|int"):
        return "int", True
    if a == "float":
        return "float", False
    if a in ("float|None", "None|float"):
        return "float", True
    if a == "str":
        return "str", None
    if a.startswith("list[tuple[") and a.endswith("]]"):
        return "levels", len(a[len("list[tuple[") : -2].split(","))
    raise TypeError(f"no columnar codec for field type {annotation!r}")


def _schema(cls: type) -> list[tuple[str, str, Any]]:
    return [(f.name, *_field_codec(str(f.type))) for f in dataclasses.fields(cls)]


SCHEMAS: dict[str, list[tuple[str, str, Any]]] = {t.__name__: _schema(t) for t in EVENT_TYPES}


def _new_column(name: str, kind: str, arg: Any) -> _Column:
    if kind == "int":
        return _IntColumn(name, arg)
    if kind == "float":
        return _FloatColumn(name, arg)
    if kind == "str":
        return _StrColumn(name)
    return _LevelsColumn(name, arg)


def _decode_column(data: dict[str, np.ndarray], prefix: str, kind: str, arg: Any) -> list:
    if kind == "int":
        return _IntColumn.decode(data, prefix, arg)
    if kind == "float":
        return _FloatColumn.decode(data, prefix, arg)
    if kind == "str":
        return _StrColumn.decode(data, prefix)
    return _LevelsColumn.decode(data, prefix, arg)


# -- writing ----------------------------------------------------------------------------------------


class _PartBuilder:
    def __init__(self, has_tiebreak: bool = False) -> None:
        self.has_tiebreak = has_tiebreak  # ties are the importer's keys, not just file positions
        self.kinds = array("B")
        self.keys = array("q")
        self.ties = array("q")
        self.kind_names: list[str] = []
        self.kind_index: dict[type, int] = {}
        self.tables: list[list[_Column]] = []

    def __len__(self) -> int:
        return len(self.kinds)

    def add(self, ev: Any, tie: int) -> None:
        t = type(ev)
        k = self.kind_index.get(t)
        if k is None:
            name = t.__name__
            if name not in SCHEMAS:
                raise TypeError(f"not a market event: {t!r}")
            k = self.kind_index[t] = len(self.kind_names)
            self.kind_names.append(name)
            self.tables.append([_new_column(f, kind, arg) for f, kind, arg in SCHEMAS[name]])
        self.kinds.append(k)
        self.keys.append(replay_key(ev))
        self.ties.append(tie)
        for col in self.tables[k]:
            col.add(getattr(ev, col.name))

    def write(self, path: Path) -> dict[str, Any]:
        """Write the part; returns its meta (key range, counts, whether it needed reordering)."""
        keys = np.frombuffer(self.keys, dtype=np.int64).copy()
        ties = np.frombuffer(self.ties, dtype=np.int64).copy()
        arrays: dict[str, np.ndarray] = {
            "kind": np.frombuffer(self.kinds, dtype=np.uint8).copy(),
            "kind_names": np.array(self.kind_names, dtype=str),
            "key": keys,
            "tie": ties,
        }
        order = _replay_order(keys, ties, self.has_tiebreak)
        if order is not None:
            arrays["order"] = order
        for name, table in zip(self.kind_names, self.tables):
            for col in table:
                arrays.update(col.arrays(f"{name}.{col.name}"))
        np.savez(path, **arrays)
        sorted_keys = keys if order is None else keys[order]
        counts = {name: int(np.count_nonzero(arrays["kind"] == i)) for i, name in enumerate(self.kind_names)}
        return {
            "file": path.name,
            "events": len(keys),
            "min_key": int(sorted_keys[0]),
            "max_key": int(sorted_keys[-1]),
            "reordered": order is not None,
            "counts": counts,
        }


def _replay_order(keys: np.ndarray, ties: np.ndarray, has_tiebreak: bool) -> np.ndarray | None:
    """None when already in (key, tie) order; an exact reversal for newest-first data; else a stable sort.

    Without an importer tie-break, `ties` are file positions: a newest-first file is then reversed
    as a whole, so rows sharing a time come out in the reverse of their file order too.
    """
    if len(keys) < 2:
        return None
    dk = np.diff(keys)
    dt = np.diff(ties)
    if np.all((dk > 0) | ((dk == 0) & (dt >= 0))):
        return None
    descending = (dk < 0) | ((dk == 0) & (dt <= 0)) if has_tiebreak else dk <= 0
    if np.all(descending):
        return np.arange(len(keys) - 1, -1, -1, dtype=np.int64)
    return np.lexsort((np.arange(len(keys)), ties, keys)).astype(np.int64)


def build_cache(
    events: Iterable[Any],
    out_dir: Path,
    report: ImportReport,
    source: dict[str, Any],
    tiebreak=None,
    part_events: int = PART_EVENTS,
) -> Path:
    """Write `events` as a cache directory at `out_dir` (atomically: built aside, then renamed).

    An existing complete cache at `out_dir` is kept (the caller removes it to force a rebuild).
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".tmp-", dir=out_dir.parent))
    try:
        parts: list[dict[str, Any]] = []
        builder = _PartBuilder(tiebreak is not None)
        symbols: set[str] = set()
        n = 0
        for ev in events:
            tie = tiebreak(ev) if tiebreak is not None else None
            builder.add(ev, n if tie is None else tie)
            symbols.add(ev.symbol)
            n += 1
            if len(builder) >= part_events:
                parts.append(builder.write(tmp / f"part-{len(parts):05d}.npz"))
                builder = _PartBuilder(tiebreak is not None)
        if len(builder):
            parts.append(builder.write(tmp / f"part-{len(parts):05d}.npz"))
        report.events = n
        meta = {
            "version": CACHE_VERSION,
            "source": source,
            "events": n,
            "symbols": sorted(symbols),
            "parts": parts,
            "report": report.to_dict(),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if not (out_dir / "meta.json").exists():
                raise
            # Another process (a sweep worker) converted the same file first: keep its copy,
            # which readers may already have open, and drop ours.
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


# -- reading ----------------------------------------------------------------------------------------


def read_meta(cache_dir: Path) -> dict[str, Any]:
    return json.loads((cache_dir / "meta.json").read_text())


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _part_events(data: dict[str, np.ndarray]) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """All events of a part in replay order, with their replay keys and tie-breaks."""
    kinds = data["kind"]
    names = [str(x) for x in data["kind_names"]]
    per_kind: list[list[Any]] = []
    for name in names:
        cls = TYPES_BY_NAME[name]
        cols = [_decode_column(data, f"{name}.{f}", kind, arg) for f, kind, arg in SCHEMAS[name]]
        per_kind.append([cls(*vals) for vals in zip(*cols)])
    if len(names) == 1:
        seq = per_kind[0]
    else:
        iters = [iter(x) for x in per_kind]
        nexts = [it.__next__ for it in iters]
        seq = [nexts[k]() for k in kinds.tolist()]
    order = data.get("order")
    keys, ties = data["key"], data["tie"]
    if order is not None:
        seq = [seq[i] for i in order.tolist()]
        keys, ties = keys[order], ties[order]
    return seq, keys, ties


def _groups(parts: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Parts sorted by key range; overlapping neighbours grouped for merging."""
    ordered = sorted(parts, key=lambda p: (p["min_key"], p["max_key"]))
    groups: list[list[dict[str, Any]]] = []
    hi = None
    for p in ordered:
        if groups and hi is not None and p["min_key"] < hi:
            groups[-1].append(p)
            hi = max(hi, p["max_key"])
        else:
            groups.append([p])
            hi = p["max_key"]
    return groups


def iter_cache(cache_dir: Path, start_key: int | None = None, end_key: int | None = None) -> Iterator[Any]:
    """Events of a cache in replay order, optionally limited to start_key <= key < end_key."""
    meta = read_meta(cache_dir)
    for group in _groups(meta["parts"]):
        if end_key is not None and group[0]["min_key"] >= end_key:
            break
        if start_key is not None and max(p["max_key"] for p in group) < start_key:
            continue
        if len(group) == 1:
            seq, keys, _ties = _part_events(_load(cache_dir / group[0]["file"]))
            yield from _window(seq, keys, start_key, end_key)
            continue
        # Overlapping parts (a file that is out of order across parts): merge them by (key, tie).
        streams = []
        for rank, p in enumerate(sorted(group, key=lambda p: p["file"])):
            seq, keys, ties = _part_events(_load(cache_dir / p["file"]))
            streams.append(zip(keys.tolist(), ties.tolist(), [rank] * len(seq), range(len(seq)), seq))
        for k, _tie, _rank, _i, ev in heapq.merge(*streams):
            if start_key is not None and k < start_key:
                continue
            if end_key is not None and k >= end_key:
                return
            yield ev


def _window(seq: list[Any], keys: np.ndarray, start_key: int | None, end_key: int | None) -> Iterator[Any]:
    lo = 0 if start_key is None else int(np.searchsorted(keys, start_key, side="left"))
    hi = len(seq) if end_key is None else int(np.searchsorted(keys, end_key, side="left"))
    if lo == 0 and hi == len(seq):
        yield from seq
    else:
        yield from seq[lo:hi]


def load_columns(cache_dir: Path, kind: str) -> dict[str, np.ndarray]:
    """One event type's columns over the whole cache, in replay order, for vectorized scans.

    Numeric fields come back as numpy arrays (NaN / INT_NONE for None) and `key` holds the replay
    key; str fields as int32 codes plus a `<field>.values` object array; level fields as
    `<field>.n` counts and `<field>.0`, `<field>.1`... flat arrays. Parts are concatenated and
    stably sorted by key, so parts that overlap in time merge correctly.
    """
    meta = read_meta(cache_dir)
    parts = []
    for group in _groups(meta["parts"]):
        for p in group:
            data = _load(cache_dir / p["file"])
            names = [str(x) for x in data["kind_names"]]
            if kind not in names:
                continue
            k = names.index(kind)
            kinds = data["kind"]
            order = data.get("order")
            pos = order if order is not None else np.arange(len(kinds))
            events = pos[kinds[pos] == k]  # this kind's events, in replay order
            rows = (np.cumsum(kinds == k) - 1)[events]  # their rows in the kind's table
            cols = select_rows(_kind_columns(data, kind), rows)
            cols["key"] = data["key"][events]
            parts.append(cols)
    return concat_columns(parts) if parts else _empty_columns(kind)


def _kind_columns(data: dict[str, np.ndarray], kind: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for fname, fkind, arg in SCHEMAS[kind]:
        prefix = f"{kind}.{fname}"
        if fkind == "levels":
            out[fname + ".n"] = data[prefix + ".n"]
            for i in range(arg):
                out[f"{fname}.{i}"] = data[f"{prefix}.{i}"]
        elif fkind == "str":
            out[fname] = data[prefix]
            out[fname + ".values"] = np.array(_StrColumn.values_table(data, prefix), dtype=object)
        else:
            out[fname] = data[prefix]
    return out


def _empty_columns(kind: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {"key": np.zeros(0, dtype=np.int64)}
    for fname, fkind, arg in SCHEMAS[kind]:
        if fkind == "levels":
            out[fname + ".n"] = np.zeros(0, dtype=np.int64)
            for i in range(arg):
                out[f"{fname}.{i}"] = np.zeros(0)
        elif fkind == "str":
            out[fname] = np.zeros(0, dtype=np.int32)
            out[fname + ".values"] = np.array([], dtype=object)
        else:
            out[fname] = np.zeros(0, dtype=np.int64 if fkind == "int" else np.float64)
    return out


def _level_fields(cols: dict[str, np.ndarray]) -> list[str]:
    return [k[:-2] for k in cols if k.endswith(".n")]


def select_rows(cols: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    """Rows `index` (a boolean mask or positions) of a column set; level columns stay aligned."""
    if index.dtype == bool:
        index = np.flatnonzero(index)
    level_fields = _level_fields(cols)
    flat_of = {f"{f}.{i}" for f in level_fields for i in range(_width(cols, f))}
    out: dict[str, np.ndarray] = {}
    for k, v in cols.items():
        if k.endswith(".values"):
            out[k] = v
        elif k not in flat_of:
            out[k] = v[index]
    for f in level_fields:
        counts = cols[f + ".n"]
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[index]
        sel = counts[index]
        # positions of the selected events' levels: each start repeated over its count, plus 0..n-1
        flat = np.repeat(starts - np.concatenate(([0], np.cumsum(sel)[:-1])), sel) + np.arange(int(sel.sum()))
        for i in range(_width(cols, f)):
            out[f"{f}.{i}"] = cols[f"{f}.{i}"][flat]
    return out


def _width(cols: dict[str, np.ndarray], field: str) -> int:
    i = 0
    while f"{field}.{i}" in cols:
        i += 1
    return i


def concat_columns(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate column sets (str codes re-mapped to one table), then stably sort by `key`."""
    if len(parts) == 1:
        out = parts[0]
    else:
        out = {}
        for f in [k[: -len(".values")] for k in parts[0] if k.endswith(".values")]:
            table: dict[str, int] = {}
            coded = []
            for p in parts:
                remap = np.array([table.setdefault(v, len(table)) for v in p[f + ".values"]], dtype=np.int32)
                coded.append(remap[p[f]] if len(remap) else p[f].astype(np.int32))
            out[f] = np.concatenate(coded)
            out[f + ".values"] = np.array(list(table), dtype=object)
        for k in parts[0]:
            if k not in out:
                out[k] = np.concatenate([p[k] for p in parts])
    keys = out["key"]
    if len(keys) < 2 or not np.any(np.diff(keys) < 0):
        return out
    return select_rows(out, np.argsort(keys, kind="stable"))
