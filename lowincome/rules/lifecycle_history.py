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
import io
import json
import os
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from ..freshness import FRESHNESS_FILE, FRESHNESS_SCHEMA
from ..temporaries import temporary_path
from ..workstore import WorkStore, write_atomic

HISTORY_KIND = "lifecycle"
CURRENT = "CURRENT"
RUN_DIR = "lifecycle"  # in each run folder: the day's delta and its materialised state
FLAG_DAY = "mart/flag_day.parquet"  # the day's full facts, kept in the run folder for audits (pruned with it)
# ...written without its `as_of` column (a constant: the folder's day), so that a night whose flags are the
# same as the night before writes the same bytes and the run folder shares them (`workstore.share_unchanged`);
# `read_flag_day` gives the column back.
LEGACY_FLAG_DAYS = "flag_days"  # work/history/flag_days/<D>.parquet of the earliest layout

FACT_SCHEMA = {
    "flag_id": pl.String, "rule_id": pl.String, "rule_name": pl.String, "kind": pl.String, "level": pl.String,
    "subject_type": pl.String, "subject_key": pl.String, "county_code": pl.String, "period": pl.String,
    "as_of": pl.Date, "evidence": pl.String, "evidence_hash": pl.String, "carried": pl.Boolean,
    "stale_feeds": pl.String,
    # the kinds of fact behind the flag (sorted, '|'-joined; engine.py): a dismissal stays while today's
    # are among those in force when it was decided and the level is not higher (rules.md Lifecycle).
    # Null on days recorded before this column existed.
    "substance": pl.String,
}
FACT_COLUMNS = list(FACT_SCHEMA)
_COMPARED = [c for c in FACT_COLUMNS if c not in ("flag_id", "as_of")]
STATE_SCHEMA = {**FACT_SCHEMA, "first_seen_on": pl.Date, "days_seen": pl.Int64, "last_held_on": pl.Date}
# a row when a flag appears or its evidence, level or substance changes: what a decision was taken on
EVIDENCE_SCHEMA = {"flag_id": pl.String, "evidence_hash": pl.String, "from_day": pl.Date, "level": pl.String,
                   "substance": pl.String}
TREND_SCHEMA = {"as_of": pl.Date, "holding": pl.Int64, "new_flags": pl.Int64, "resolved_flags": pl.Int64}
DELTA_SCHEMA = {"op": pl.String, **{c: t for c, t in FACT_SCHEMA.items() if c != "as_of"}}
FRESH_DELTA_SCHEMA = {"op": pl.String, **{c: t for c, t in FRESHNESS_SCHEMA.items() if c != "as_of"}}
FRESH_KEY = ["feed", "county"]


@dataclass
class State:
    """Everything the lifecycle needs to know about the days up to `day` (None: before the first day)."""

    day: date | None  # the newest day with a flag list
    flags: pl.DataFrame  # STATE_SCHEMA, one row per flag ever seen; `as_of` is the flag's last_seen_on
    evidence: pl.DataFrame  # EVIDENCE_SCHEMA
    trend: pl.DataFrame  # TREND_SCHEMA
    freshness: pl.DataFrame  # FRESHNESS_SCHEMA: the completeness guard's table of every recorded day (audit.feed_freshness)

    def facts(self) -> pl.DataFrame:
        """The facts of `day` itself: the flags whose latest row is from that day."""
        if self.day is None:
            return empty(FACT_SCHEMA)
        return self.flags.filter(pl.col("as_of") == self.day).select(FACT_COLUMNS)

    def freshness_of(self, day: date | None) -> pl.DataFrame:
        if day is None:
            return empty(FRESHNESS_SCHEMA)
        return self.freshness.filter(pl.col("as_of") == day)


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

def step(state: State, facts: pl.DataFrame | None, freshness: pl.DataFrame | None, day: date) -> State:
    """The state of `day` from the state of the newest earlier day and the day's facts: O(flags).

    `facts` None: the day has no flag list (only the guard's table), as on days of the earliest layouts.
    """
    fresh = pl.concat([state.freshness.filter(pl.col("as_of") < day),
                       conform(freshness, FRESHNESS_SCHEMA).with_columns(pl.lit(day).alias("as_of"))]
                      if freshness is not None else [state.freshness.filter(pl.col("as_of") < day)])
    if facts is None:
        return State(state.day, state.flags, state.evidence, state.trend, fresh)
    facts = conform(facts, FACT_SCHEMA).with_columns(pl.lit(day).alias("as_of"))
    before = state.flags.select("flag_id", "first_seen_on", "days_seen", "last_held_on",
                                pl.col("evidence_hash").alias("_hash_before"), pl.col("level").alias("_level_before"),
                                pl.col("substance").alias("_substance_before"))
    joined = facts.join(before, on="flag_id", how="left")
    today = joined.with_columns(
        first_seen_on=pl.coalesce("first_seen_on", pl.lit(day)),
        days_seen=pl.col("days_seen").fill_null(0) + 1,
        last_held_on=pl.when(pl.col("carried")).then(pl.col("last_held_on")).otherwise(pl.lit(day)),
    )
    untouched = state.flags.join(facts.select("flag_id"), on="flag_id", how="anti")
    flags = pl.concat([untouched, today.select(list(STATE_SCHEMA))], how="vertical_relaxed")
    changed = joined.filter(pl.col("_hash_before").is_null() | (pl.col("_hash_before") != pl.col("evidence_hash"))
                            | pl.col("_level_before").ne_missing(pl.col("level"))
                            | pl.col("_substance_before").ne_missing(pl.col("substance")))
    evidence = pl.concat([conform(state.evidence, EVIDENCE_SCHEMA),
                          changed.select("flag_id", "evidence_hash", pl.lit(day).alias("from_day"), "level", "substance")],
                         how="vertical_relaxed")
    resolved = state.facts().join(facts.select("flag_id"), on="flag_id", how="anti").height
    row = pl.DataFrame({"as_of": [day], "holding": [facts.height],
                        "new_flags": [int(joined["first_seen_on"].is_null().sum())], "resolved_flags": [resolved]},
                       schema=TREND_SCHEMA)
    trend = pl.concat([state.trend.filter(pl.col("as_of") < day), row])
    return State(day, flags, evidence, trend, fresh)


def initial() -> State:
    return State(None, empty(STATE_SCHEMA), empty(EVIDENCE_SCHEMA), empty(TREND_SCHEMA), empty(FRESHNESS_SCHEMA))


def write_flag_day(folder: Path, facts: pl.DataFrame) -> Path:
    """The day's full facts in its run folder (`FLAG_DAY`), without the constant `as_of` column."""
    return write_atomic(folder / FLAG_DAY, facts.drop("as_of", strict=False))


def read_flag_day(path: Path, day: date) -> pl.DataFrame:
    """A run folder's `FLAG_DAY` with its `as_of` column (the day of the folder) back in place, after `period`.

    Files of the earlier layout still carry the column and are returned as they are.
    """
    frame = pl.read_parquet(path)
    if "as_of" in frame.columns:
        return frame
    columns = list(frame.columns)
    at = columns.index("period") + 1 if "period" in columns else len(columns)
    columns.insert(at, "as_of")
    return frame.with_columns(pl.lit(day, dtype=pl.Date).alias("as_of")).select(columns)


# ---- deltas ------------------------------------------------------------------------------------

def delta(base: pl.DataFrame, new: pl.DataFrame, schema: dict = FACT_SCHEMA, key: list[str] | None = None) -> pl.DataFrame:
    """What changed from `base` to `new` (rows of one day): 'set' rows (new or different) and 'drop' rows."""
    key = key or ["flag_id"]
    base = conform(base, schema).drop("as_of")
    new = conform(new, schema).drop("as_of")
    sets = new.join(base, on=list(base.columns), how="anti", nulls_equal=True)
    drops = base.select(key).join(new.select(key), on=key, how="anti", nulls_equal=True)
    out = pl.concat([sets.with_columns(pl.lit("set").alias("op")), drops.with_columns(pl.lit("drop").alias("op"))],
                    how="diagonal_relaxed")
    return conform(out, {"op": pl.String, **{c: t for c, t in schema.items() if c != "as_of"}}).sort(["op", *key])


def apply(base: pl.DataFrame, change: pl.DataFrame, day: date, schema: dict = FACT_SCHEMA,
          key: list[str] | None = None) -> pl.DataFrame:
    """The rows of `day`: `base`'s, patched by the delta `change`."""
    key = key or ["flag_id"]
    base = conform(base, schema)
    sets = change.filter(pl.col("op") == "set").drop("op")
    kept = base.join(change.select(key), on=key, how="anti", nulls_equal=True)
    return (pl.concat([kept, conform(sets, schema)], how="vertical_relaxed")
            .with_columns(pl.lit(day).alias("as_of")).sort(key))


def _content_hash(change: pl.DataFrame | None) -> str | None:
    """A hash of a delta (already in a fixed order), from its compressed Parquet bytes: small even on a first night."""
    if change is None:
        return None
    buffer = io.BytesIO()
    change.write_parquet(buffer, statistics=False)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def token_of(day: date, base_day: date | None, base_token: str | None, change: pl.DataFrame | None,
             fresh_change: pl.DataFrame | None = None) -> str:
    """Names one version of a day: its base and its content (None: the day has no flag list / no guard table)."""
    text = json.dumps([day.isoformat(), base_day.isoformat() if base_day else None, base_token, _content_hash(change),
                       _content_hash(fresh_change)])
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

    def _change(self, day: date, token: str, suffix: str, schema: dict) -> pl.DataFrame:
        path = self.root / day.isoformat() / f"{token}{suffix}"
        return conform(pl.read_parquet(path), schema) if path.exists() else empty(schema)

    def record(self, day: date, token: str, meta: dict, changes: dict[str, pl.DataFrame | Path | None]) -> None:
        """Add a version of `day` (idempotent) and make it the day's current one.

        `changes` maps a file suffix (".parquet": the flags' delta, ".fresh.parquet": the guard table's)
        to a frame or a file to copy; empty ones are not written (an unchanged night: no Parquet at all).
        """
        folder = self.root / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / f"{token}.json").exists():
            for suffix, change in changes.items():
                if isinstance(change, Path):
                    if change.exists():
                        _copy_atomic(change, folder / f"{token}{suffix}")
                elif change is not None and change.height:
                    write_atomic(folder / f"{token}{suffix}", change)
            _write_text(folder / f"{token}.json", json.dumps(meta))  # last: its presence means "complete"
        try:
            current = (folder / CURRENT).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            current = None
        if current != token:
            _write_text(folder / CURRENT, token)

    def rows(self, day: date, token: str, known: dict[tuple[date, str], tuple[pl.DataFrame, pl.DataFrame]]
             ) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
        """The flags and the guard table of one version of a day (and its record), rebuilt through its bases."""
        chain = []
        d, t = day, token
        while True:
            if (d, t) in known:
                facts, fresh = known[(d, t)]
                break
            meta = self.meta(d, t)
            chain.append((d, t, meta))
            if meta.get("base_day") is None:
                facts, fresh = empty(FACT_SCHEMA), empty(FRESHNESS_SCHEMA)
                break
            d, t = date.fromisoformat(meta["base_day"]), meta["base_token"]
        for d, t, meta in reversed(chain):
            facts = apply(facts, self._change(d, t, ".parquet", DELTA_SCHEMA), d)
            fresh = apply(fresh, self._change(d, t, ".fresh.parquet", FRESH_DELTA_SCHEMA), d, FRESHNESS_SCHEMA, FRESH_KEY)
        return facts, fresh, self.meta(day, token)


def digests(days: dict[date, str]) -> dict[date, str]:
    """For each recorded day, a digest of every day up to it with its token (what a state summarises)."""
    out, h = {}, None
    for day, token in days.items():
        h = chain_digest(h, day, token)
        out[day] = h
    return out


def chain_digest(previous: str | None, day: date, token: str) -> str:
    return hashlib.sha256(f"{previous or ''}|{day.isoformat()}:{token}".encode()).hexdigest()


def base_rows(state: State, base_day: date | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The flags and guard table of the recorded day `base_day`, which a new day's delta is taken against."""
    facts = state.facts() if base_day is not None and state.day == base_day else empty(FACT_SCHEMA)
    return facts, state.freshness_of(base_day)


# ---- run folder ----------------------------------------------------------------------------------

def record_day(folder: Path, state: State, day: date, facts: pl.DataFrame | None, freshness: pl.DataFrame | None,
               previous: State, tokens: dict[date, str], digest_of: dict[date, str]) -> State:
    """Step to `day`, and write its delta (for the history) and materialised state (for the next night) in `folder`."""
    base_day = max(tokens) if tokens else None
    base_facts, base_fresh = base_rows(previous, base_day)
    change = delta(base_facts, facts if facts is not None else empty(FACT_SCHEMA))
    fresh_change = delta(base_fresh, freshness if freshness is not None else empty(FRESHNESS_SCHEMA),
                         FRESHNESS_SCHEMA, FRESH_KEY)
    base_token = tokens[base_day] if base_day else None
    token = token_of(day, base_day, base_token, change if facts is not None else None, fresh_change)
    meta = {"day": day.isoformat(), "base_day": base_day.isoformat() if base_day else None, "base_token": base_token,
            "facts": facts is not None, "rows": change.height, "fresh_rows": fresh_change.height}
    out = folder / RUN_DIR
    write_atomic(out / "state.parquet", state.flags)
    write_atomic(out / "evidence.parquet", state.evidence)
    write_atomic(out / "trend.parquet", state.trend)
    write_atomic(out / "freshness.parquet", state.freshness)
    write_atomic(out / "delta.parquet", change)
    write_atomic(out / "delta.fresh.parquet", fresh_change)
    digest = chain_digest(digest_of.get(base_day) if base_day else None, day, token)
    _write_text(out / "delta.json", json.dumps({**meta, "token": token, "digest": digest}))  # last
    return state


def _run_meta(folder: Path | None) -> dict | None:
    if folder is None:
        return None
    try:
        return json.loads((folder / RUN_DIR / "delta.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None


def load_run_state(folder: Path, meta: dict) -> State:
    out = folder / RUN_DIR
    flags = conform(pl.read_parquet(out / "state.parquet"), STATE_SCHEMA)
    trend = conform(pl.read_parquet(out / "trend.parquet"), TREND_SCHEMA)
    return State(trend["as_of"].max() if trend.height else None, flags,
                 conform(pl.read_parquet(out / "evidence.parquet"), EVIDENCE_SCHEMA), trend,
                 conform(pl.read_parquet(out / "freshness.parquet"), FRESHNESS_SCHEMA))


def adopt(store: WorkStore, day: date, folder: Path) -> bool:
    """Copy a run folder's delta for `day` into the history and make it current (idempotent)."""
    meta = _run_meta(folder)
    if meta is None:
        return False
    record = {k: v for k, v in meta.items() if k not in ("token", "digest")}
    out = folder / RUN_DIR
    History(store).record(day, meta["token"], record,
                          {".parquet": out / "delta.parquet" if meta["rows"] else None,
                           ".fresh.parquet": out / "delta.fresh.parquet" if meta["fresh_rows"] else None})
    return True


def sync(store: WorkStore) -> None:
    """Bring the history up to date with the committed run folders (and migrate the earlier layouts once).

    Normally the commit hook (`lifecycle.commit_history`) has recorded every committed day already;
    this repairs a commit that did not call it and migrates warehouses written before the history existed
    (days with a full `mart/flag_day.parquet` and/or `guard/feed_freshness.parquet`, or `history/flag_days`).
    """
    committed = store.committed()
    history = History(store)
    recorded = history.days()
    legacy: dict[date, tuple[Path | None, Path | None]] = {}
    folder = store.history_dir(LEGACY_FLAG_DAYS)
    if folder.is_dir():
        for path in folder.glob("*.parquet"):
            try:
                legacy[date.fromisoformat(path.stem)] = (path, None)
            except ValueError:
                continue
    for day in committed.completed_days():
        run = committed.committed_dir(day)
        meta = _run_meta(run)
        if meta is not None:
            if recorded.get(day) != meta["token"]:
                adopt(store, day, run)
        elif run is not None:
            flags = run / FLAG_DAY if (run / FLAG_DAY).exists() else legacy.get(day, (None, None))[0]
            fresh = run / FRESHNESS_FILE if (run / FRESHNESS_FILE).exists() else None
            if flags is not None or fresh is not None:
                legacy[day] = (flags, fresh)  # a committed day of the earlier layout wins over the older history
    previous: tuple[date, str, pl.DataFrame, pl.DataFrame] | None = None
    for day, (flags_file, fresh_file) in sorted(legacy.items()):  # once: each a delta against the previous migrated day
        if day in recorded:
            continue
        facts = conform(pl.read_parquet(flags_file), FACT_SCHEMA) if flags_file else None
        fresh = conform(pl.read_parquet(fresh_file), FRESHNESS_SCHEMA) if fresh_file else empty(FRESHNESS_SCHEMA)
        base_day, base_token, base_facts, base_fresh = previous or (None, None, empty(FACT_SCHEMA), empty(FRESHNESS_SCHEMA))
        change = delta(base_facts, facts if facts is not None else empty(FACT_SCHEMA))
        fresh_change = delta(base_fresh, fresh, FRESHNESS_SCHEMA, FRESH_KEY)
        token = token_of(day, base_day, base_token, change if facts is not None else None, fresh_change)
        meta = {"day": day.isoformat(), "base_day": base_day.isoformat() if base_day else None, "base_token": base_token,
                "facts": facts is not None, "rows": change.height, "fresh_rows": fresh_change.height}
        history.record(day, token, meta, {".parquet": change, ".fresh.parquet": fresh_change})
        previous = (day, token, facts if facts is not None else empty(FACT_SCHEMA), fresh)


def _newest_valid(store: WorkStore, days: dict[date, str], digest: dict[date, str]) -> tuple[int, Path | None, dict | None]:
    """The index (in `days`) and run folder of the newest day whose materialised state matches the history."""
    committed = store.committed()
    ordered = list(days)
    for i in range(len(ordered) - 1, -1, -1):
        folder = committed.committed_dir(ordered[i])
        meta = _run_meta(folder)
        if meta is not None and meta.get("digest") == digest[ordered[i]]:
            return i, folder, meta
    return -1, None, None


def _recorded_before(store: WorkStore, day: date) -> tuple[dict[date, str], dict[date, str]]:
    sync(store)
    days = {d: t for d, t in History(store).days().items() if d < day}
    return days, digests(days)


def state_before(store: WorkStore, day: date) -> tuple[State, dict[date, str], dict[date, str]]:
    """The state of the recorded days before `day`, with their tokens and digests.

    Fast path: the newest of them has a committed run folder whose materialised state's digest matches
    the history (nothing older was back-filled or changed since). Otherwise the state is rebuilt from
    the newest valid materialised state before it (or from nothing), one `step` per recorded day.
    """
    days, digest = _recorded_before(store, day)
    if not days:
        return initial(), days, digest
    ordered = list(days)
    i, folder, meta = _newest_valid(store, days, digest)
    state, known = initial(), {}
    if folder is not None:
        state = load_run_state(folder, meta)
        known[(ordered[i], days[ordered[i]])] = base_rows(state, ordered[i])
    history = History(store)
    for d in ordered[i + 1:]:
        facts, fresh, record = history.rows(d, days[d], known)
        known = {(d, days[d]): (facts, fresh)}  # the next day is normally based on this one
        state = step(state, facts if record.get("facts", True) else None, fresh, d)
    return state, days, digest


def freshness_before(store: WorkStore, day: date) -> pl.DataFrame:
    """The guard's table of every recorded day before `day` (reads only that table on the fast path)."""
    days, digest = _recorded_before(store, day)
    if not days:
        return empty(FRESHNESS_SCHEMA)
    i, folder, _ = _newest_valid(store, days, digest)
    if i == len(days) - 1:
        return conform(pl.read_parquet(folder / RUN_DIR / "freshness.parquet"), FRESHNESS_SCHEMA)
    return state_before(store, day)[0].freshness


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = temporary_path(dst)
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
