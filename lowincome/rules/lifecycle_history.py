"""The lifecycle's memory across nights: what each evaluated day held, kept as small immutable deltas.

The flag lifecycle of day D is an aggregate over every evaluated day up to D
(first seen, last seen, days seen, last held, the latest evidence, the evidence
in force when a caseworker decided). Re-reading every day's full flag list each
night costs nights x flags; this module lets a night cost what it delivers:

- **Facts** (the flags that held or were carried on a day, with their evidence)
  are recorded once per day in `work/history/lifecycle/<D>/<token>.parquet` as a
  delta against the facts of the day they were built on (`base`): rows that are
  new or changed (`op = 'set'`) and flags that are gone (`op = 'drop'`). A night
  that changes nothing writes no Parquet at all, only `<token>.json` (its base)
  and the `CURRENT` pointer: a few hundred bytes. The token is a hash of the day,
  the base's token and the delta's content, so a re-run that reproduces the same
  day gets the same token and invalidates nothing. Superseded versions are kept
  (they are small, and a later day's delta may be based on them).
- **State** (one row per flag ever seen up to D: the latest fact row plus
  first_seen_on, days_seen, last_held_on), the **evidence log** (flag_id,
  evidence_hash, from_day: a row when a flag appears or its evidence changes)
  and the **trend** (one row per day) are materialised in each run's folder
  (`lifecycle/`). Day D's are derived from the newest earlier day's in O(flags)
  (`step`). They carry the digest of the history they summarise (every day up to
  D with its token), so a state built before an older day was back-filled or
  re-run with different content is recognised as outdated and rebuilt from the
  history (from the newest still-valid materialised state, or from the first day).
  Run folders can therefore be pruned after their retention period: the history
  alone reproduces any day.

Warehouses of the earlier layout (a full `mart/flag_day.parquet` in every
committed run folder, or `work/history/flag_days/<D>.parquet`) are migrated once,
on the first night that finds days the history does not know yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from ..workstore import WorkStore, write_atomic

HISTORY_KIND = "lifecycle"
CURRENT = "CURRENT"
RUN_DIR = "lifecycle"  # in each run folder: the day's delta and its materialised state
FLAG_DAY = "mart/flag_day.parquet"  # the day's full facts, kept in the run folder for audits (pruned with it)
LEGACY_FLAG_DAYS = "flag_days"  # work/history/flag_days/<D>.parquet of the earliest layout

FACT_SCHEMA = {
    "flag_id": pl.String, "rule_id": pl.String, "rule_name": pl.String, "kind": pl.String, "level": pl.String,
    "subject_type": pl.String, "subject_key": pl.String, "county_code": pl.String, "period": pl.String,
    "as_of": pl.Date, "evidence": pl.String, "evidence_hash": pl.String, "carried": pl.Boolean,
    "stale_feeds": pl.String,
}
FACT_COLUMNS = list(FACT_SCHEMA)
_COMPARED = [c for c in FACT_COLUMNS if c not in ("flag_id", "as_of")]
STATE_SCHEMA = {**FACT_SCHEMA, "first_seen_on": pl.Date, "days_seen": pl.Int64, "last_held_on": pl.Date}
EVIDENCE_SCHEMA = {"flag_id": pl.String, "evidence_hash": pl.String, "from_day": pl.Date}
TREND_SCHEMA = {"as_of": pl.Date, "holding": pl.Int64, "new_flags": pl.Int64, "resolved_flags": pl.Int64}
DELTA_SCHEMA = {"op": pl.String, **{c: t for c, t in FACT_SCHEMA.items() if c != "as_of"}}


@dataclass
class State:
    """Everything the lifecycle needs to know about the days up to `day` (None: before the first day)."""

    day: date | None
    flags: pl.DataFrame  # STATE_SCHEMA, one row per flag ever seen; `as_of` is the flag's last_seen_on
    evidence: pl.DataFrame  # EVIDENCE_SCHEMA
    trend: pl.DataFrame  # TREND_SCHEMA

    def facts(self) -> pl.DataFrame:
        """The facts of `day` itself: the flags whose latest row is from that day."""
        if self.day is None:
            return empty(FACT_SCHEMA)
        return self.flags.filter(pl.col("as_of") == self.day).select(FACT_COLUMNS)


def empty(schema: dict) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: dict) -> pl.DataFrame:
    """The columns of `schema` in its order and types; missing ones null (carried: false)."""
    cols = []
    for c, t in schema.items():
        if c == "carried" and c in frame.columns:
            cols.append(pl.col(c).cast(t).fill_null(False))
        elif c in frame.columns:
            cols.append(pl.col(c).cast(t))
        elif c == "carried":
            cols.append(pl.lit(False).alias(c))
        else:
            cols.append(pl.lit(None, dtype=t).alias(c))
    return frame.select(cols)


# ---- one night ---------------------------------------------------------------------------------

def step(state: State, facts: pl.DataFrame, day: date) -> State:
    """The state of `day` from the state of the newest earlier day and the day's facts: O(flags)."""
    facts = conform(facts, FACT_SCHEMA).with_columns(pl.lit(day).alias("as_of"))
    before = state.flags.select("flag_id", "first_seen_on", "days_seen", "last_held_on",
                                pl.col("evidence_hash").alias("_hash_before"))
    joined = facts.join(before, on="flag_id", how="left")
    today = joined.with_columns(
        first_seen_on=pl.coalesce("first_seen_on", pl.lit(day)),
        days_seen=pl.col("days_seen").fill_null(0) + 1,
        last_held_on=pl.when(pl.col("carried")).then(pl.col("last_held_on")).otherwise(pl.lit(day)),
    )
    untouched = state.flags.join(facts.select("flag_id"), on="flag_id", how="anti")
    flags = pl.concat([untouched, today.select(list(STATE_SCHEMA))], how="vertical_relaxed")
    changed = joined.filter(pl.col("_hash_before").is_null() | (pl.col("_hash_before") != pl.col("evidence_hash")))
    evidence = pl.concat([state.evidence, changed.select("flag_id", "evidence_hash", pl.lit(day).alias("from_day"))],
                         how="vertical_relaxed")
    resolved = state.facts().join(facts.select("flag_id"), on="flag_id", how="anti").height
    row = pl.DataFrame({"as_of": [day], "holding": [facts.height],
                        "new_flags": [int(joined["first_seen_on"].is_null().sum())], "resolved_flags": [resolved]},
                       schema=TREND_SCHEMA)
    trend = pl.concat([state.trend.filter(pl.col("as_of") < day), row])
    return State(day, flags, evidence, trend)


def initial() -> State:
    return State(None, empty(STATE_SCHEMA), empty(EVIDENCE_SCHEMA), empty(TREND_SCHEMA))


# ---- deltas ------------------------------------------------------------------------------------

def delta(base: pl.DataFrame, facts: pl.DataFrame) -> pl.DataFrame:
    """What changed from the facts `base` to the facts `facts`: 'set' rows (new or different) and 'drop' rows."""
    base = conform(base, FACT_SCHEMA).drop("as_of")
    facts = conform(facts, FACT_SCHEMA).drop("as_of")
    sets = facts.join(base, on=_COMPARED + ["flag_id"], how="anti", nulls_equal=True)
    drops = base.select("flag_id").join(facts.select("flag_id"), on="flag_id", how="anti")
    out = pl.concat([sets.with_columns(pl.lit("set").alias("op")), drops.with_columns(pl.lit("drop").alias("op"))],
                    how="diagonal_relaxed")
    return conform(out, DELTA_SCHEMA).sort("op", "flag_id")


def apply(base: pl.DataFrame, change: pl.DataFrame, day: date) -> pl.DataFrame:
    """The facts of `day`: `base`'s, patched by the delta `change`."""
    base = conform(base, FACT_SCHEMA)
    sets = change.filter(pl.col("op") == "set").drop("op")
    kept = base.join(change.select("flag_id"), on="flag_id", how="anti")
    return (pl.concat([kept, conform(sets, FACT_SCHEMA)], how="vertical_relaxed")
            .with_columns(pl.lit(day).alias("as_of")).sort("flag_id"))


def _content_hash(change: pl.DataFrame) -> str:
    return hashlib.sha256(change.sort("op", "flag_id").write_csv().encode("utf-8")).hexdigest()


def token_of(day: date, base_day: date | None, base_token: str | None, change: pl.DataFrame) -> str:
    text = json.dumps([day.isoformat(), base_day.isoformat() if base_day else None, base_token, _content_hash(change)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


# ---- the history store -------------------------------------------------------------------------

class History:
    """`work/history/lifecycle/<D>/`: one small record per evaluated day (and superseded versions)."""

    def __init__(self, store: WorkStore):
        self.store = store
        self.root = store.history_dir(HISTORY_KIND)

    def days(self) -> dict[date, str]:
        """Every recorded day → its current token."""
        out: dict[date, str] = {}
        if not self.root.is_dir():
            return out
        for folder in self.root.iterdir():
            try:
                day = date.fromisoformat(folder.name)
                out[day] = (folder / CURRENT).read_text(encoding="utf-8").strip()
            except (ValueError, FileNotFoundError, NotADirectoryError):
                continue
        return dict(sorted(out.items()))

    def meta(self, day: date, token: str) -> dict:
        return json.loads((self.root / day.isoformat() / f"{token}.json").read_text(encoding="utf-8"))

    def change(self, day: date, token: str) -> pl.DataFrame:
        path = self.root / day.isoformat() / f"{token}.parquet"
        return conform(pl.read_parquet(path), DELTA_SCHEMA) if path.exists() else empty(DELTA_SCHEMA)

    def has(self, day: date, token: str) -> bool:
        return (self.root / day.isoformat() / f"{token}.json").exists()

    def record(self, day: date, token: str, meta: dict, change: pl.DataFrame | None, change_file: Path | None = None) -> None:
        """Add a version of `day` (idempotent) and make it the day's current one."""
        folder = self.root / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / f"{token}.json").exists():
            if change_file is not None and change_file.exists():
                _copy_atomic(change_file, folder / f"{token}.parquet")
            elif change is not None and change.height:
                write_atomic(folder / f"{token}.parquet", change)
            _write_text(folder / f"{token}.json", json.dumps(meta))  # last: its presence means "complete"
        if self.days().get(day) != token:
            _write_text(folder / CURRENT, token)

    def facts(self, day: date, token: str, known: dict[tuple[date, str], pl.DataFrame] | None = None) -> pl.DataFrame:
        """The facts of one version of a day, rebuilt through its chain of bases."""
        chain = []
        while True:
            if known is not None and (day, token) in known:
                facts = known[(day, token)]
                break
            meta = self.meta(day, token)
            chain.append((day, token))
            if meta.get("base_day") is None:
                facts = empty(FACT_SCHEMA)
                break
            day, token = date.fromisoformat(meta["base_day"]), meta["base_token"]
        for d, t in reversed(chain):
            facts = apply(facts, self.change(d, t), d)
        return facts


def digests(days: dict[date, str]) -> dict[date, str]:
    """For each recorded day, a digest of every day up to it with its token (what a state summarises)."""
    out, h = {}, ""
    for day, token in days.items():
        h = hashlib.sha256(f"{h}|{day.isoformat()}:{token}".encode()).hexdigest()
        out[day] = h
    return out


# ---- run folder ----------------------------------------------------------------------------------

def save_run(folder: Path, state: State, digest: str, token: str, meta: dict, change: pl.DataFrame) -> None:
    """The day's delta (for the history) and materialised state (for the next night) in the run folder."""
    out = folder / RUN_DIR
    write_atomic(out / "state.parquet", state.flags)
    write_atomic(out / "evidence.parquet", state.evidence)
    write_atomic(out / "trend.parquet", state.trend)
    write_atomic(out / "delta.parquet", change)
    _write_text(out / "delta.json", json.dumps({**meta, "token": token, "digest": digest}))  # last


def _run_meta(folder: Path | None) -> dict | None:
    if folder is None:
        return None
    try:
        return json.loads((folder / RUN_DIR / "delta.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None


def load_run_state(folder: Path, day: date) -> State:
    out = folder / RUN_DIR
    return State(day, conform(pl.read_parquet(out / "state.parquet"), STATE_SCHEMA),
                 conform(pl.read_parquet(out / "evidence.parquet"), EVIDENCE_SCHEMA),
                 conform(pl.read_parquet(out / "trend.parquet"), TREND_SCHEMA))


def adopt(store: WorkStore, day: date, folder: Path) -> bool:
    """Copy a run folder's delta for `day` into the history and make it current (idempotent)."""
    meta = _run_meta(folder)
    if meta is None:
        return False
    token = meta["token"]
    record = {"day": meta["day"], "base_day": meta["base_day"], "base_token": meta["base_token"], "rows": meta["rows"]}
    change = folder / RUN_DIR / "delta.parquet" if meta["rows"] else None  # an unchanged night: no Parquet at all
    History(store).record(day, token, record, None, change)
    return True


def sync(store: WorkStore) -> None:
    """Bring the history up to date with the committed run folders (and migrate the earlier layouts once).

    Normally the commit hook (`lifecycle.commit_history`) has recorded every committed day already;
    this repairs a commit that did not call it and migrates warehouses written before the history existed.
    """
    committed = store.committed()
    history = History(store)
    recorded = history.days()
    legacy: dict[date, Path] = {}
    folder = store.history_dir(LEGACY_FLAG_DAYS)
    if folder.is_dir():
        for path in folder.glob("*.parquet"):
            try:
                legacy[date.fromisoformat(path.stem)] = path
            except ValueError:
                continue
    for day in committed.completed_days():
        run = committed.committed_dir(day)
        meta = _run_meta(run)
        if meta is not None:
            if recorded.get(day) != meta["token"]:
                adopt(store, day, run)
        elif run is not None and (run / FLAG_DAY).exists():
            legacy[day] = run / FLAG_DAY  # a committed day of the earlier layout wins over the older history
    missing = {d: p for d, p in sorted(legacy.items()) if d not in recorded}
    previous: tuple[date, str, pl.DataFrame] | None = None
    for day, path in missing.items():  # once: each migrated day is a delta against the previous migrated day
        facts = conform(pl.read_parquet(path), FACT_SCHEMA).with_columns(pl.lit(day).alias("as_of"))
        base_day, base_token, base = previous if previous else (None, None, empty(FACT_SCHEMA))
        change = delta(base, facts)
        token = token_of(day, base_day, base_token, change)
        history.record(day, token, {"day": day.isoformat(), "base_day": base_day.isoformat() if base_day else None,
                                    "base_token": base_token, "rows": change.height}, change)
        previous = (day, token, facts)


def state_before(store: WorkStore, day: date) -> tuple[State, dict[date, str], dict[date, str]]:
    """The state of the newest recorded day before `day`, the tokens and the digests of the recorded days before it.

    Fast path: that day's committed run folder holds a materialised state whose digest matches the
    history (nothing older was back-filled or changed since). Otherwise the state is rebuilt from the
    newest valid materialised state before it (or from nothing), one `step` per recorded day.
    """
    sync(store)
    history = History(store)
    days = {d: t for d, t in history.days().items() if d < day}
    digest = digests(days)
    if not days:
        return initial(), days, digest
    committed = store.committed()
    ordered = list(days)
    start, state = 0, initial()
    for i in range(len(ordered) - 1, -1, -1):
        d = ordered[i]
        folder = committed.committed_dir(d)
        meta = _run_meta(folder)
        if meta is not None and meta.get("digest") == digest[d]:
            state, start = load_run_state(folder, d), i + 1
            break
    known: dict[tuple[date, str], pl.DataFrame] = {}
    if state.day is not None:
        known[(state.day, days[state.day])] = state.facts()
    for d in ordered[start:]:
        facts = history.facts(d, days[d], known)
        known = {(d, days[d]): facts}  # the next day is normally based on this one
        state = step(state, facts, d)
    return state, days, digest


def chain_digest(previous: str | None, day: date, token: str) -> str:
    return hashlib.sha256(f"{previous or ''}|{day.isoformat()}:{token}".encode()).hexdigest()


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
