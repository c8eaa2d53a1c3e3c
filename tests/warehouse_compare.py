"""Every table and view of two warehouses' published databases, compared row for row (multiset).

Independent of the publishing code: it lists what each database holds through DuckDB's own catalog and
compares contents with EXCEPT ALL both ways. Only the columns that name a run or a moment differ between
two runs of the same day by construction, and are left out.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

DATABASES = ("lowincome.duckdb", "restricted.duckdb")
RUN_COLUMNS = {"run_id", "started_at", "finished_at", "published_at", "code_version"}

_RELATIONS = """
    SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = '{db}'
    UNION SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = '{db}' AND NOT internal
"""


def differences(a: Path, b: Path) -> tuple[list[str], int]:
    """(what differs, how many relations were compared) between warehouses `a` and `b`."""
    found: list[str] = []
    compared = 0
    for name in DATABASES:
        con = duckdb.connect()
        try:
            con.execute(f"ATTACH '{Path(a) / name}' AS a (READ_ONLY)")
            con.execute(f"ATTACH '{Path(b) / name}' AS b (READ_ONLY)")
            ra = set(con.execute(_RELATIONS.format(db="a")).fetchall())
            rb = set(con.execute(_RELATIONS.format(db="b")).fetchall())
            if ra != rb:
                found.append(f"{name}: relations differ: {sorted(ra ^ rb)}")
            for schema, table in sorted(ra & rb):
                ca = [r[0] for r in con.execute(f'DESCRIBE a."{schema}"."{table}"').fetchall()]
                cb = [r[0] for r in con.execute(f'DESCRIBE b."{schema}"."{table}"').fetchall()]
                if ca != cb:
                    found.append(f"{name} {schema}.{table}: columns differ {ca} / {cb}")
                    continue
                cols = ", ".join(f'"{c}"' for c in ca if c not in RUN_COLUMNS)
                only_a = con.execute(f'SELECT count(*) FROM (SELECT {cols} FROM a."{schema}"."{table}" '
                                     f'EXCEPT ALL SELECT {cols} FROM b."{schema}"."{table}")').fetchone()[0]
                only_b = con.execute(f'SELECT count(*) FROM (SELECT {cols} FROM b."{schema}"."{table}" '
                                     f'EXCEPT ALL SELECT {cols} FROM a."{schema}"."{table}")').fetchone()[0]
                compared += 1
                if only_a or only_b:
                    found.append(f"{name} {schema}.{table}: {only_a} row(s) only in {a}, {only_b} only in {b}")
        finally:
            con.close()
    return found, compared
