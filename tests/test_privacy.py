"""No ID number or name leaks: not in the analysts' database, the reports, the Dagster logs or the CLI output."""

from __future__ import annotations

import re

import duckdb
from dagster import DagsterInstance

from lowincome.cli import main

from .handmade import bad_check
from .test_pipeline_handmade import A, B, C, DAY, _inbox

ID_LIKE = re.compile(r"(?<![0-9a-f.])\d{17}[\dXx](?![0-9a-f])|(?<![0-9a-f.])\d{15}(?![0-9a-f])")
NAMES = ("赵一", "钱二", "孙三")
SECRETS = (A, B, C, bad_check(C), *NAMES)


def _assert_clean(text: str, where: str) -> None:
    assert not ID_LIKE.search(text), f"{where}: something like an ID number: {ID_LIKE.search(text).group(0)[:6]}…"
    for s in SECRETS:
        assert s not in text, f"{where}: a sample ID number or name"


def test_nothing_identifying_in_outputs_logs_or_console(tmp_path, lowincome_env, monkeypatch, capfd):
    warehouse = lowincome_env(_inbox(tmp_path))
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("LOWINCOME_BLOCKING_SHARE", "0.5")
    assert main(["run", "--as-of", DAY.isoformat()]) == 0
    out, err = capfd.readouterr()
    assert "as of" in out
    _assert_clean(out + err, "console output")

    with DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert runs
        for run in runs:
            for record in instance.all_logs(run.run_id):
                _assert_clean(record.message or "", "dagster event log")
                if record.dagster_event and record.dagster_event.event_specific_data is not None:
                    _assert_clean(repr(record.dagster_event.event_specific_data), "dagster event metadata")

    for path in (warehouse / "reports").rglob("*"):
        if path.is_file() and path.suffix in {".html", ".json", ".js", ".css", ".txt"}:
            _assert_clean(path.read_text(encoding="utf-8", errors="replace"), str(path))

    con = duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)
    for schema, table, column in con.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns WHERE data_type = 'VARCHAR'"
    ).fetchall():
        for (value,) in con.execute(f'SELECT DISTINCT "{column}" FROM {schema}.{table}').fetchall():
            if value is not None:
                _assert_clean(value, f"{schema}.{table}.{column}")
    # ...while the restricted database does hold them, for caseworkers.
    rcon = duckdb.connect(str(warehouse / "restricted.duckdb"), read_only=True)
    assert rcon.execute("SELECT count(*) FROM person_index WHERE id_number = $a", {"a": A}).fetchone()[0] == 1


# ---- masking by content (unit level) ------------------------------------------------------

import polars as pl  # noqa: E402

from lowincome.feeds import FEEDS  # noqa: E402
from lowincome.parts import record_json as _record_json  # noqa: E402
from lowincome.privacy import known_names, mask_content_expr, neutralize_html, redact  # noqa: E402
from lowincome.publish import _analyst_select  # noqa: E402
from lowincome.validation import RAW_PREFIX  # noqa: E402

from .handmade import person_id  # noqa: E402

ID18 = person_id("371302", "19900101", 123)
ID_X = next(i for i in (person_id("371302", "19850505", s) for s in range(200)) if i.endswith("X"))
ID15 = "371302900101123"
FULLWIDTH = ID_X.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
EXCEL = "3.71302199001011E+17"
SHAPES = (ID18, ID_X, ID15, FULLWIDTH, EXCEL, ID_X.lower())
ANY_ID = re.compile(r"[0-9０-９]{15,}|[0-9]\.[0-9]{5,}[eE]")


def test_redact_masks_every_id_shape_and_known_names_only():
    text = "; ".join(f"value '{s}'" for s in SHAPES) + "; 张三丰 and 张三 and 孙子 and 孙子女 and 张"
    out = redact(text, {"张三", "张三丰", "孙子"}, keep={"孙子女"})
    assert not ANY_ID.search(out), out
    for s in SHAPES:
        assert s not in out
    assert "371302**********" in out and "３７１３０２**********" in out
    assert "张** and 张* and 孙* and 孙子女 and 张" in out


def test_content_mask_expression_agrees_with_redact():
    names = known_names(["张三", " 张三丰 ", "A", None, "", "孙子", "本人"], exclude={"本人"})
    assert names == ["张三丰", "孙子", "张三"]
    texts = [f"x{s}y 张三丰/张三 孙子女 本人" for s in SHAPES]
    got = pl.DataFrame({"v": texts}).select(mask_content_expr(pl.col("v"), names, keep={"孙子女", "本人"}))["v"].to_list()
    assert got == [redact(t, set(names), keep={"孙子女", "本人"}) for t in texts]
    assert all(not ANY_ID.search(g) and "张三" not in g and "孙子女" in g for g in got)


def _shifted_roster_row() -> pl.DataFrame:
    """A roster row missing 家庭编号: every later value shifted one column to the left."""
    spec = FEEDS["civil_roster"]
    delivered = ["371302100200", ID_X, ID18, "钱二", "配偶", "低保", "农村", "在保", "2023/5/1", "", "2", "320", "760"]
    row = {RAW_PREFIX + c.name: (delivered[i] if i < len(delivered) else None) for i, c in enumerate(spec.columns)}
    return pl.DataFrame([row], schema={RAW_PREFIX + c.name: pl.String for c in spec.columns})


def test_masked_record_of_a_shifted_row_holds_no_id_and_no_name():
    frame = _shifted_roster_row()
    spec = FEEDS["civil_roster"]
    masked = frame.select(_record_json(spec, masked=True, names=["钱二"])).item()
    raw = frame.select(_record_json(spec, masked=False)).item()
    assert ID_X in raw and "钱二" in raw  # the shift put the head's ID into 家庭编号
    assert ID_X not in masked and ID18 not in masked and "钱二" not in masked, masked
    assert not ANY_ID.search(masked)
    assert "371302**********" in masked


def test_free_text_is_withheld_from_the_masked_record():
    spec = FEEDS["verification_outcomes"]
    frame = pl.DataFrame([{RAW_PREFIX + "flag_id": "F1", RAW_PREFIX + "outcome": "maybe",
                           RAW_PREFIX + "note": f"visited 王芳, ID {ID18}", RAW_PREFIX + "decided_on": "2026-10-01",
                           RAW_PREFIX + "caseworker": "李四", RAW_PREFIX + "name": "王芳"}])
    masked = frame.select(_record_json(spec, masked=True, names=["王芳", "李四"])).item()
    assert "visited" not in masked and "王芳" not in masked and "李四" not in masked and ID18[6:] not in masked
    assert "已隐去" in masked


def test_analysts_get_no_free_text_and_only_icd10_diagnoses():
    outcomes = _analyst_select(FEEDS["verification_outcomes"], ["flag_id", "outcome", "note", "decided_on", "caseworker"])
    assert "note" not in outcomes and "caseworker" not in outcomes
    medical = FEEDS["medical_claims"]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (diagnosis_code VARCHAR)")
    values = ["C34.9", "K29", "s72.001", " J18.0 ", f"患者王芳 {ID18}", "C34.9; 家属说明", "<script>x</script>", None]
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in values])
    got = [r[0] for r in con.execute(f"SELECT {_analyst_select(medical, ['diagnosis_code'])} FROM t").fetchall()]
    assert got == ["C34.9", "K29", "S72.001", "J18.0", None, None, None, None]


def test_html_is_neutralised_into_inert_lookalikes():
    out = neutralize_html("<img src=x onerror=\"alert('1')\">&</script>`")
    assert not set("<>&\"'`") & set(out) and "＜img" in out


def test_known_names_keeps_its_plain_definition():
    """`known_names` runs in Polars for big rosters; it must still mean: trimmed, distinct, 2..12 printable
    characters, not a format word, not shaped like an ID number, longest first then by code point."""
    import random

    from lowincome.privacy import _ID_RE, MAX_NAME_CHARS, MIN_NAME_CHARS, known_names

    def plain(values, exclude):
        out = set()
        for v in values:
            if v is None:
                continue
            v = str(v).strip(" \t\r\n\u3000\u00a0")
            if (MIN_NAME_CHARS <= len(v) <= MAX_NAME_CHARS and v not in exclude and v.isprintable()
                    and not _ID_RE.fullmatch(v)):
                out.add(v)
        return sorted(out, key=lambda n: (-len(n), n))

    rng = random.Random(3)
    alphabet = list("张王李赵孙 \t\u3000\u00a0\u200b\x00ab0123456789Xx．.eE+\n") + ["371302196001010017", "3.71302196E+17", "孙子女"]
    values = [None] + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20))) for _ in range(20000)]
    exclude = {"孙子女", "姓名", "张王"}
    expected = plain(values, exclude)
    assert len(expected) > 1000
    assert known_names(values, exclude) == expected
    assert known_names(pl.Series(values), exclude) == expected
