"""A feed's staging as of a day: a list of immutable per-delivery Parquet parts, never a copy of all history.

Each delivered file is parsed and validated once into the delivery store
(`lowincome.store`); its accepted rows become one Parquet *part*. Staging as of
day D is the list of parts of the files in use on D (dated on or before D, not
held back) plus, for snapshot feeds, which files are the newest per county.
The list is small (a manifest, one JSON file per feed in the run's folder), so a
night writes what it delivered, not the whole history again; DuckDB reads the
parts out of core through a view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl


def sql_text(value: str) -> str:
    """A SQL string literal. File names come from the inbox and may hold quotes: never paste them raw."""
    return "'" + value.replace("'", "''") + "'"


def sql_list(values) -> str:
    return "[" + ", ".join(sql_text(str(v)) for v in values) + "]"


@dataclass(frozen=True)
class Staging:
    """What staging.<feed> is as of one day; paths are relative to the work store's root."""

    feed: str
    snapshot: bool
    empty: str  # a zero-row part with the feed's staging schema, for a feed with no part yet
    parts: tuple[str, ...] = ()  # accepted (de-duplicated) rows, one part per file in use, in delivery order
    latest: tuple[str, ...] = ()  # snapshots: source_file of the newest usable file per county
    quarantine: tuple[str, ...] = ()  # rejected rows, one or more parts per file
    rows: int = 0  # accepted rows over all parts

    def to_json(self) -> str:
        return json.dumps({"feed": self.feed, "snapshot": self.snapshot, "empty": self.empty, "parts": list(self.parts),
                           "latest": list(self.latest), "quarantine": list(self.quarantine), "rows": self.rows},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Staging":
        d = json.loads(text)
        return cls(d["feed"], d["snapshot"], d["empty"], tuple(d["parts"]), tuple(d["latest"]), tuple(d["quarantine"]),
                   int(d.get("rows", 0)))

    def part_paths(self, root: Path) -> list[str]:
        return [str(root / p) for p in self.parts]

    def quarantine_paths(self, root: Path) -> list[str]:
        return [str(root / p) for p in self.quarantine]

    def latest_sql(self) -> str:
        """`is_latest`: increments are always current; a snapshot row is current in its county's newest file."""
        if not self.snapshot:
            return "true"
        if not self.latest:
            return "false"
        return f"source_file IN ({', '.join(sql_text(n) for n in self.latest)})"

    def relation_sql(self, root: Path, paths: list[str] | None = None) -> str:
        """SELECT over the parts (or `paths`, e.g. the analysts' copies), with `is_latest`; literal SQL for a view."""
        files = paths if paths is not None else self.part_paths(root)
        files = files or [str(root / self.empty)]
        return (f"SELECT *, {self.latest_sql()} AS is_latest "
                f"FROM read_parquet({sql_list(files)}, union_by_name = true)")

    def frame(self, root: Path) -> pl.DataFrame:
        """The whole staging table in memory: for tests and small tools only (the pipeline reads it out of core)."""
        con = duckdb.connect()
        try:
            return pl.from_arrow(con.sql(self.relation_sql(root)).to_arrow_table())
        finally:
            con.close()

    def quarantine_frame(self, root: Path) -> pl.DataFrame | None:
        if not self.quarantine:
            return None
        con = duckdb.connect()
        try:
            return pl.from_arrow(con.sql(
                f"SELECT * FROM read_parquet({sql_list(self.quarantine_paths(root))}, union_by_name = true) "
                "ORDER BY delivered_on, source_file, source_row").to_arrow_table())
        finally:
            con.close()
