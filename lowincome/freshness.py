"""The completeness guard: is there anything to run on, and how fresh is each feed of each county?

rules.md "Stale data resolves nothing": a flag may be resolved only by data at
least as fresh as the data that raised it. Per run we work out, for every
(feed, county) the warehouse has used before, the newest delivery in use
(the newest snapshot with accepted rows, or the newest increment file with
accepted rows) and whether it is stale:

- a snapshot older than the policy's `snapshot_stale_days`;
- an increment with no delivery for more than `increment_stale_days`;
- no usable delivery at all, although one was used on an earlier evaluated day;
- freshness went backwards: an earlier evaluated day (≤ D) used newer data than
  the run uses now (the newest snapshot vanished or was held back).

Everything here works on per-file accounting (one row per delivered file), never
on the feeds' rows, so it costs the same for a county of ten people or ten million.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from .errors import LowincomeError
from .feeds import DEPARTMENT_FEEDS, FEEDS
from .rules.policy import Policy
from .workstore import WorkStore

FRESHNESS_FILE = "guard/feed_freshness.parquet"
FRESHNESS_SCHEMA = {
    "as_of": pl.Date,
    "feed": pl.String,
    "delivery": pl.String,  # snapshot | increment
    "county": pl.String,
    "latest_delivery": pl.Date,  # newest file with accepted rows in use (null: none)
    "freshest_before": pl.Date,  # the freshest data an earlier evaluated day used
    "stale_after_days": pl.Int64,
    "stale": pl.Boolean,
    "reason": pl.String,
    "stale_since": pl.Date,
}


class EmptyInbox(LowincomeError):
    pass


def usable_files(deliveries: pl.DataFrame) -> pl.DataFrame:
    """Files whose rows the run uses (at least one accepted row)."""
    if deliveries.is_empty():
        return deliveries
    return deliveries.filter(pl.col("rows_accepted").fill_null(0) > 0)


def check_not_empty(deliveries: pl.DataFrame, inbox: Path, as_of: date, last_published: date | None) -> None:
    """Refuse a day with no usable delivery at all: an unmounted share must not resolve every flag."""
    if usable_files(deliveries).height:
        return
    kept = (f"the last publication, as of {last_published}, stays in place" if last_published
            else "there is no earlier publication")
    raise EmptyInbox(
        f"收件箱无可用数据 inbox {inbox} has no deliveries dated on or before {as_of}; nothing published ({kept}); "
        "run with --allow-empty if the day is deliberately empty"
    )


def _history(store: WorkStore, as_of: date) -> pl.DataFrame:
    """The guard's table of every recorded day before `as_of`.

    Kept with the flag lifecycle's per-day history (lowincome/rules/lifecycle_history.py): carried
    from the newest earlier day's run, small deltas per day, so it costs one read of the previous
    day's table rather than one file per night, and survives the pruning of old run folders.
    """
    from .rules.lifecycle_history import freshness_before

    return freshness_before(store, as_of)


def feed_freshness(store: WorkStore, as_of: date, policy: Policy, deliveries: pl.DataFrame,
                   feeds: tuple[str, ...] | list[str] = tuple(DEPARTMENT_FEEDS)) -> pl.DataFrame:
    """One row per (feed, county) the warehouse has used, on or before `as_of`, with its staleness.

    `deliveries` is the run's per-file accounting (audit.deliveries rows: feed, county,
    extracted_on, rows_accepted). The history is read from committed days before `as_of`,
    so a day's answer depends only on the days before it, whatever order they were run in.
    """
    used = usable_files(deliveries)
    today = (
        used.filter(pl.col("feed").is_in(list(feeds)))
        .group_by("feed", "county").agg(pl.col("extracted_on").max().alias("latest_delivery"))
        if used.height else pl.DataFrame(schema={"feed": pl.String, "county": pl.String, "latest_delivery": pl.Date})
    )
    history = _history(store, as_of).filter(pl.col("feed").is_in(list(feeds)))
    before = history.group_by("feed", "county").agg(pl.col("latest_delivery").max().alias("freshest_before"))
    previous_day = history["as_of"].max() if history.height else None
    previous = (history.filter(pl.col("as_of") == previous_day)
                .select("feed", "county", pl.col("stale").alias("was_stale"), pl.col("stale_since").alias("was_stale_since"))
                if previous_day else pl.DataFrame(schema={"feed": pl.String, "county": pl.String, "was_stale": pl.Boolean,
                                                          "was_stale_since": pl.Date}))
    seen = pl.concat([today.select("feed", "county"), before.filter(pl.col("freshest_before").is_not_null())
                      .select("feed", "county")]).unique()
    if seen.is_empty():
        return pl.DataFrame(schema=FRESHNESS_SCHEMA)
    counties = seen["county"].unique().to_list()
    limits = pl.DataFrame(
        [{"county": c, "snapshot": int(p["snapshot_stale_days"]), "increment": int(p["increment_stale_days"])}
         for c in counties for p in [policy.in_force(c, as_of)]],
        schema={"county": pl.String, "snapshot": pl.Int64, "increment": pl.Int64},
    )
    kinds = pl.DataFrame({"feed": list(FEEDS), "delivery": [FEEDS[f].kind for f in FEEDS]})
    frame = (
        seen.join(today, on=["feed", "county"], how="left")
        .join(before, on=["feed", "county"], how="left")
        .join(previous, on=["feed", "county"], how="left")
        .join(kinds, on="feed", how="left")
        .join(limits, on="county", how="left")
        .with_columns(
            pl.lit(as_of).alias("as_of"),
            pl.when(pl.col("delivery") == "snapshot").then("snapshot").otherwise("increment").alias("stale_after_days"),
        )
    )
    age = (pl.lit(as_of) - pl.col("latest_delivery")).dt.total_days()
    none = pl.col("latest_delivery").is_null()
    backwards = pl.col("freshest_before").is_not_null() & (none | (pl.col("latest_delivery") < pl.col("freshest_before")))
    too_old = ~none & (age > pl.col("stale_after_days"))
    what = pl.when(pl.col("delivery") == "snapshot").then(pl.lit("snapshot")).otherwise(pl.lit("last delivery"))
    reason = (
        pl.when(none).then(
            pl.lit("无可用数据 no usable delivery now; an earlier day used data of ")
            + pl.col("freshest_before").cast(pl.String))
        .when(backwards).then(
            pl.lit("数据倒退 freshness went backwards: newest in use ") + pl.col("latest_delivery").cast(pl.String)
            + pl.lit(", an earlier day used ") + pl.col("freshest_before").cast(pl.String))
        .when(too_old).then(
            pl.lit("数据过期 ") + what + pl.lit(" dated ") + pl.col("latest_delivery").cast(pl.String) + pl.lit(" is ")
            + age.cast(pl.String) + pl.lit(" days old (limit ") + pl.col("stale_after_days").cast(pl.String) + pl.lit(")"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    since_age = pl.col("latest_delivery") + pl.duration(days=pl.col("stale_after_days") + 1)
    frame = frame.with_columns(stale=none | backwards | too_old, reason=reason).with_columns(
        stale_since=pl.when(~pl.col("stale")).then(pl.lit(None, dtype=pl.Date))
        .when(pl.col("was_stale").fill_null(False)).then(pl.col("was_stale_since"))
        .when(too_old & ~backwards).then(since_age)
        .otherwise(pl.lit(as_of))
    )
    return frame.select([pl.col(c).cast(t) for c, t in FRESHNESS_SCHEMA.items()]).sort("feed", "county")


def stale_pairs(freshness: pl.DataFrame) -> pl.DataFrame:
    """(feed, county) pairs that are stale, with since when and why."""
    return freshness.filter(pl.col("stale")).select("feed", "county", "latest_delivery", "stale_since", "reason")


def describe_stale(freshness: pl.DataFrame) -> list[str]:
    """One line per stale (feed, county), for logs and asset checks (no personal data: file-level facts only)."""
    return [
        f"{r['feed']} / {r['county']}: stale since {r['stale_since']} ({r['reason']}); flags depending on it are carried, not resolved"
        for r in stale_pairs(freshness).iter_rows(named=True)
    ]


def freshness_history(store: WorkStore, as_of: date, today: pl.DataFrame) -> pl.DataFrame:
    """audit.feed_freshness as known on `as_of`: every earlier recorded day's table and today's.

    (The nightly run writes it from the lifecycle's state in `build_marts`; this is the same table.)"""
    return pl.concat([_history(store, as_of), today.select(list(FRESHNESS_SCHEMA))], how="vertical_relaxed").sort(
        "as_of", "feed", "county")

