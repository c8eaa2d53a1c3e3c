"""The analysts' database describes itself: every table and column carries the dictionary's comment,
and docs/data-dictionary.md is the same text (issue 12, "a self-describing warehouse")."""

from __future__ import annotations

from pathlib import Path

import duckdb

from lowincome.dictionary import (
    TABLES,
    UNDESCRIBED,
    apply_comments,
    column_comment,
    published_schema,
    render_markdown,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "data-dictionary.md"
USER_SCHEMAS = "schema_name NOT IN ('information_schema', 'pg_catalog') AND database_name = current_database()"


def _open(published) -> duckdb.DuckDBPyConnection:
    warehouse, _ = published
    return duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)


def test_every_published_table_and_column_has_the_dictionary_comment(published):
    con = _open(published)
    try:
        relations = con.execute(
            f"SELECT schema_name || '.' || table_name, comment FROM duckdb_tables() WHERE {USER_SCHEMAS} "
            f"UNION ALL SELECT schema_name || '.' || view_name, comment FROM duckdb_views() WHERE {USER_SCHEMAS} "
            "AND NOT internal"
        ).fetchall()
        columns = con.execute(
            f"SELECT schema_name || '.' || table_name, column_name, comment FROM duckdb_columns() WHERE {USER_SCHEMAS}"
        ).fetchall()
    finally:
        con.close()
    assert len(relations) >= 20 and len(columns) >= 200  # the whole published schema, not an empty database
    for table, comment in relations:
        assert comment == TABLES.get(table) and comment != UNDESCRIBED, f"{table}: {comment!r}"
    undescribed = [f"{t}.{c}" for t, c, comment in columns if not comment or comment == UNDESCRIBED]
    assert not undescribed, f"published columns without a description: {undescribed}"
    for table, column, comment in columns:
        assert comment == column_comment(table, column), f"{table}.{column}"
    assert not [c for _, c, _ in columns if c == "asof"], "a stray asof column (reserved word in DuckDB) is published"


def test_data_dictionary_document_matches_the_published_database(published):
    con = _open(published)
    try:
        expected = render_markdown(published_schema(con))
    finally:
        con.close()
    assert DOC.read_text(encoding="utf-8") == expected, (
        "docs/data-dictionary.md is out of date: regenerate it with "
        "`python -m lowincome.dictionary <warehouse>/lowincome.duckdb > docs/data-dictionary.md`"
    )


def test_a_column_missing_from_the_dictionary_is_reported_and_marked(tmp_path):
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    try:
        con.execute("CREATE SCHEMA mart; CREATE TABLE mart.rules (rule_id VARCHAR, surprise INTEGER)")
        assert apply_comments(con) == ["mart.rules.surprise"]
        comments = dict(con.execute(
            "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'rules'").fetchall())
    finally:
        con.close()
    assert comments == {"rule_id": column_comment("mart.rules", "rule_id"), "surprise": UNDESCRIBED}


def test_the_publish_asset_carries_the_column_schema_of_every_table(published_run):
    warehouse, _, result = published_run
    [materialization] = result.asset_materializations_for_node("publish__warehouse")
    metadata = materialization.metadata
    con = duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)
    try:
        schema = published_schema(con)
    finally:
        con.close()
    assert {k.removeprefix("schema ") for k in metadata if k.startswith("schema ")} == set(schema)
    for table, columns in schema.items():
        shown = metadata[f"schema {table}"].schema.columns
        assert [(c.name, c.type) for c in shown] == columns
        assert all(c.description == column_comment(table, c.name) for c in shown), table
