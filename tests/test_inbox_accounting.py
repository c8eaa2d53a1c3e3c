"""Every file in the inbox is accounted for; the inbox is never trusted further than its own files.

Strays (unknown folders, the root, hidden files, subfolders, links) get a row from
`inventory_strays`; a feed's own folder gets one from its ingest. Structurally broken files are
rejected alone, naming the file, in messages that quote no row content; a damaged parsed cache
is rebuilt from the delivered file.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from lowincome.delivery import inventory_strays, parse_delivery_name
from lowincome.feeds import FEEDS
from lowincome.ingest import _DELIVERY_SCHEMA, cached_file_path, ingest_feed

from .handmade import delivery_path, person_id, write_csv, write_xlsx

C = "371302"
AS_OF = date(2026, 10, 31)
TODAY = date(2026, 11, 2)
DEATH_HEADER = ["身份证号", "姓名", "死亡日期", "信息来源"]
NAME = "王小明"  # a resident's name planted in rows: it must never reach a message


def _death_rows(n: int, start: int = 1) -> list[list[str]]:
    return [[person_id(C, "19500101", k), NAME, "2026-10-01", "殡葬火化"] for k in range(start, start + n)]


def _rows(result) -> dict[str, dict]:
    return {r["file_name"]: r for r in result.deliveries.iter_rows(named=True)}


def test_strays_outside_the_feed_folders_each_get_a_row(tmp_path):
    inbox = tmp_path / "inbox"
    write_csv(delivery_path(inbox, "death_records", C, AS_OF, "csv"), DEATH_HEADER, _death_rows(2))  # a normal delivery
    write_csv(inbox / "deaths_october.csv", DEATH_HEADER, _death_rows(1))  # at the root
    write_csv(inbox / "death_record" / f"death_record_{C}_20261031.csv", DEATH_HEADER, _death_rows(1))  # unknown feed folder
    write_csv(inbox / "old" / "2025" / "x.csv", DEATH_HEADER, _death_rows(1))  # deeper folder
    write_csv(inbox / f"death_records_{C}_20261031.csv", DEATH_HEADER, _death_rows(1))  # forgot the folder
    (inbox / ".DS_Store").write_bytes(b"\0\0")
    (inbox / ".snapshot").mkdir()
    (inbox / ".snapshot" / "copy.csv").write_text("never listed")
    secret = tmp_path / "outside.txt"
    secret.write_text("root:x:0:0")
    (inbox / "passwd.csv").symlink_to(secret)
    (inbox / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(inbox / "pipe")

    strays = inventory_strays(inbox, AS_OF)
    assert strays.schema == pl.Schema(_DELIVERY_SCHEMA)
    got = {(r["feed"], r["file_name"]): (r["status"], r["message"]) for r in strays.iter_rows(named=True)}
    assert set(got) == {
        (None, "deaths_october.csv"), ("death_record", f"death_record_{C}_20261031.csv"), ("old", "2025/x.csv"),
        (None, ".DS_Store"), (None, ".snapshot/"), (None, f"death_records_{C}_20261031.csv"), (None, "passwd.csv"), (None, "elsewhere"), (None, "pipe"),
    }
    assert got[(None, "deaths_october.csv")][0] == "rejected" and "inbox root" in got[(None, "deaths_october.csv")][1]
    assert "unknown feed folder 'death_record'" in got[("death_record", f"death_record_{C}_20261031.csv")][1]
    assert got[(None, f"death_records_{C}_20261031.csv")][1].endswith("move it to <inbox>/death_records/")
    assert got[(None, ".DS_Store")][0] == "ignored" and "hidden" in got[(None, ".DS_Store")][1]
    assert "symbolic link, not followed" in got[(None, "passwd.csv")][1]
    assert "symbolic link, not followed" in got[(None, "elsewhere")][1]
    assert "not a regular file" in got[(None, "pipe")][1]
    assert (strays["rows_read"] == 0).all() and strays["sha256"].is_null().all()
    assert strays.filter(pl.col("file_name") == f"death_record_{C}_20261031.csv")["county"][0] == C


def test_feed_folder_accounts_for_links_subfolders_hidden_later_and_future_files(tmp_path):
    inbox = tmp_path / "inbox"
    folder = inbox / "death_records"
    used = write_csv(delivery_path(inbox, "death_records", C, AS_OF, "csv"), DEATH_HEADER, _death_rows(3))
    later = write_csv(delivery_path(inbox, "death_records", C, date(2026, 11, 1), "csv"), DEATH_HEADER, _death_rows(1, 50))
    future = write_csv(delivery_path(inbox, "death_records", C, date(2062, 10, 31), "csv"), DEATH_HEADER, _death_rows(1, 60))
    write_csv(folder / "resent" / used.name, DEATH_HEADER, _death_rows(1, 70))
    (folder / f".{used.name}.part").write_text("half")
    outside = tmp_path / "passwd"
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (folder / f"death_records_{C}_20261030.csv").symlink_to(outside)

    result = ingest_feed(FEEDS["death_records"], inbox, AS_OF, tmp_path / "work", today=TODAY)
    rows = _rows(result)
    assert rows[used.name]["status"] == "accepted" and rows[used.name]["rows_accepted"] == 3
    assert rows[later.name]["status"] == "later" and rows[later.name]["rows_read"] == 0
    assert rows[future.name]["status"] == "rejected"
    assert "2062-10-31 lies in the future" in rows[future.name]["message"] and "mistyped year" in rows[future.name]["message"]
    assert rows[f"resent/{used.name}"]["status"] == "rejected" and "subfolder" in rows[f"resent/{used.name}"]["message"]
    assert rows[f".{used.name}.part"]["status"] == "ignored"
    link = rows[f"death_records_{C}_20261030.csv"]
    assert link["status"] == "rejected" and link["message"].startswith("symbolic link, not followed")
    assert link["sha256"] is None and link["rows_read"] == 0
    assert result.staging.height == 3  # only the delivery proper: nothing from the link, the subfolder or the later files
    assert len(rows) == 6


def test_a_linked_feed_folder_is_not_followed(tmp_path):
    inbox = tmp_path / "inbox"
    real = tmp_path / "other"
    write_csv(real / f"death_records_{C}_20261031.csv", DEATH_HEADER, _death_rows(2))
    inbox.mkdir()
    (inbox / "death_records").symlink_to(real, target_is_directory=True)
    result = ingest_feed(FEEDS["death_records"], inbox, AS_OF, tmp_path / "work", today=TODAY)
    assert result.staging.height == 0
    assert result.deliveries.height == 1 and "symbolic link, not followed" in result.deliveries["message"][0]
    assert inventory_strays(inbox, AS_OF).height == 0  # reported once, by the feed


# ---- structurally broken files: rejected alone, named, no row content quoted ------------------------


def test_csv_with_a_column_twice_is_rejected_alone(tmp_path):
    inbox = tmp_path / "inbox"
    ok = write_csv(delivery_path(inbox, "death_records", C, date(2026, 10, 30), "csv"), DEATH_HEADER, _death_rows(2))
    twice = write_csv(delivery_path(inbox, "death_records", C, AS_OF, "csv"), DEATH_HEADER + ["身份证号"],
                      [r + [person_id(C, "19600101", 9)] for r in _death_rows(2, 10)])
    result = ingest_feed(FEEDS["death_records"], inbox, AS_OF, tmp_path / "work", today=TODAY)
    rows = _rows(result)
    assert rows[twice.name]["status"] == "rejected"
    assert rows[twice.name]["message"] == "column '身份证号' appears twice in the header"
    assert rows[ok.name]["status"] == "accepted" and result.staging.height == 2


def test_headerless_csv_with_repeated_values_quotes_no_cell(tmp_path):
    inbox = tmp_path / "inbox"
    pid = person_id(C, "19500101", 1)
    path = delivery_path(inbox, "death_records", C, AS_OF, "csv")
    path.parent.mkdir(parents=True)
    path.write_text(f"{pid},{NAME},{NAME},2026-10-01\n{pid},{NAME},{NAME},2026-10-01\n", encoding="utf-8")
    result = ingest_feed(FEEDS["death_records"], inbox, AS_OF, tmp_path / "work", today=TODAY)
    message = result.deliveries["message"][0]
    assert result.deliveries["status"][0] == "rejected" and "columns 2, 3" in message
    assert NAME not in message and pid not in message


def test_xlsx_with_a_column_twice_is_rejected(tmp_path):
    inbox = tmp_path / "inbox"
    write_xlsx(delivery_path(inbox, "death_records", C, AS_OF, "xlsx"), DEATH_HEADER + ["姓名"],
               [r + [NAME] for r in _death_rows(2)])
    result = ingest_feed(FEEDS["death_records"], inbox, AS_OF, tmp_path / "work", today=TODAY)
    assert result.deliveries["status"][0] == "rejected"
    assert "column '姓名' appears twice" in result.deliveries["message"][0]


def test_parquet_with_a_list_column_is_rejected_naming_column_and_type(tmp_path):
    inbox = tmp_path / "inbox"
    ok = write_csv(delivery_path(inbox, "death_records", C, date(2026, 10, 30), "csv"), DEATH_HEADER, _death_rows(2))
    path = delivery_path(inbox, "death_records", C, AS_OF, "parquet")
    pl.DataFrame({"身份证号": [person_id(C, "19500101", 5)], "姓名": [[NAME]], "死亡日期": ["2026-10-01"],
                  "信息来源": ["殡葬火化"]}).write_parquet(path)
    bin_path = delivery_path(inbox, "death_records", "371324", AS_OF, "parquet")
    pl.DataFrame({"身份证号": [b"\x01\x02"], "姓名": ["x"], "死亡日期": ["2026-10-01"], "信息来源": ["殡葬火化"]}).write_parquet(bin_path)
    result = ingest_feed(FEEDS["death_records"], inbox, AS_OF, tmp_path / "work", today=TODAY)
    rows = _rows(result)
    assert rows[path.name]["status"] == "rejected"
    assert "column '姓名' has type List(String)" in rows[path.name]["message"] and NAME not in rows[path.name]["message"]
    assert "column '身份证号' has type Binary" in rows[bin_path.name]["message"]
    assert rows[ok.name]["status"] == "accepted" and result.staging.height == 2


def test_unterminated_quote_gives_a_message_without_the_row(tmp_path):
    inbox = tmp_path / "inbox"
    pid = person_id(C, "19500101", 7)
    path = delivery_path(inbox, "death_records", C, AS_OF, "csv")
    path.parent.mkdir(parents=True)
    path.write_text(",".join(DEATH_HEADER) + f'\n{pid},"{NAME},2026-10-01,殡葬火化\n{pid},{NAME},"x"y,z\n', encoding="utf-8")
    result = ingest_feed(FEEDS["death_records"], inbox, AS_OF, tmp_path / "work", today=TODAY)
    row = result.deliveries.row(0, named=True)
    assert row["status"] == "rejected" and row["message"].startswith("malformed CSV")
    assert NAME not in row["message"] and pid[:14] not in row["message"]


def test_any_other_failure_reading_one_file_rejects_that_file_only(tmp_path, monkeypatch):
    import lowincome.ingest as ingest

    inbox = tmp_path / "inbox"
    ok = write_csv(delivery_path(inbox, "death_records", C, date(2026, 10, 30), "csv"), DEATH_HEADER, _death_rows(2))
    broken = write_csv(delivery_path(inbox, "death_records", C, AS_OF, "csv"), DEATH_HEADER, _death_rows(2, 20))
    real = ingest.read_delivery

    def exploding(path, spec):
        if path.name == broken.name:
            raise RuntimeError(f"row 2 could not be parsed: '{NAME}'")  # library text quoting a row
        return real(path, spec)

    monkeypatch.setattr(ingest, "read_delivery", exploding)
    result = ingest_feed(FEEDS["death_records"], inbox, AS_OF, tmp_path / "work", today=TODAY)
    rows = _rows(result)
    assert rows[broken.name]["status"] == "rejected"
    assert rows[broken.name]["message"].startswith("could not be read (RuntimeError)") and NAME not in rows[broken.name]["message"]
    assert rows[ok.name]["status"] == "accepted" and result.staging.height == 2


# ---- the parsed cache is disposable ---------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncate_parquet", "garble_meta", "drop_meta", "wrong_rows"])
def test_a_damaged_cache_entry_is_rebuilt_with_a_warning(tmp_path, damage):
    inbox = tmp_path / "inbox"
    work = tmp_path / "work"
    rows = _death_rows(5)
    write_csv(delivery_path(inbox, "death_records", C, AS_OF, "csv"), DEATH_HEADER, rows)
    first = ingest_feed(FEEDS["death_records"], inbox, AS_OF, work, today=TODAY)
    assert first.warnings == [] and first.staging.height == 5
    cache = first.files[0].cache
    assert cache == cached_file_path(work, "death_records", first.files[0].sha256, AS_OF, C)
    meta = cache.with_suffix(".json")
    if damage == "truncate_parquet":
        cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    elif damage == "garble_meta":
        meta.write_text("{not json")
    elif damage == "drop_meta":
        meta.unlink()
    else:
        pl.read_parquet(cache).head(3).write_parquet(cache)

    second = ingest_feed(FEEDS["death_records"], inbox, AS_OF, work, today=TODAY)
    assert len(second.warnings) == 1 and str(cache) in second.warnings[0] and "rebuilt" in second.warnings[0]
    assert sorted(second.staging["id_number"]) == sorted(r[0] for r in rows)
    third = ingest_feed(FEEDS["death_records"], inbox, AS_OF, work, today=TODAY)
    assert third.warnings == [] and third.staging.height == 5  # the rebuilt entry is whole again


def test_a_nightly_run_records_every_stray_file_and_says_so(tmp_path, lowincome_env, caplog, capfd):
    """End to end: files no feed reads reach audit.deliveries and the run log; a link out of the inbox is never read."""
    import logging

    import duckdb

    from pipelines.definitions import defs

    inbox = tmp_path / "inbox"
    pid = person_id(C, "19600101", 11)
    write_csv(delivery_path(inbox, "death_records", C, AS_OF, "csv"), ["身份证号", "姓名", "死亡日期", "信息来源"],
              [[pid, "赵一", "2026-10-01", "殡葬火化"]])
    secret = tmp_path / "outside.csv"
    secret.write_text("身份证号,姓名\n" + pid + ",钱二\n", encoding="utf-8")
    strays = {
        f"death_records_{C}_20261030.csv": inbox / f"death_records_{C}_20261030.csv",  # at the root
        f"notes_{C}_20261030.csv": inbox / "notes" / f"notes_{C}_20261030.csv",  # unknown feed folder
        ".hidden.csv": inbox / "death_records" / ".hidden.csv",
        f"old/death_records_{C}_20261029.csv": inbox / "death_records" / "old" / f"death_records_{C}_20261029.csv",
    }
    for path in strays.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("身份证号,姓名,死亡日期,信息来源\n", encoding="utf-8")
    (inbox / "medical_claims").mkdir()
    (inbox / "medical_claims" / f"medical_claims_{C}_20261031.csv").symlink_to(secret)
    (inbox / "passwd.csv").symlink_to("/etc/passwd")
    warehouse = lowincome_env(inbox)

    with caplog.at_level(logging.INFO):
        assert defs.resolve_job_def("nightly").execute_in_process(partition_key=AS_OF.isoformat()).success
    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        rows = {r[0]: (r[1], r[2], r[3]) for r in con.execute(
            "SELECT file_name, status, message, rows_read FROM audit.deliveries").fetchall()}
        staged = con.execute("SELECT count(*) FROM staging.medical_claims").fetchone()[0]
    expected = {*strays, f"medical_claims_{C}_20261031.csv", "passwd.csv", f"death_records_{C}_{AS_OF:%Y%m%d}.csv"}
    assert expected <= set(rows), sorted(expected - set(rows))
    for name in (*strays, "passwd.csv", f"medical_claims_{C}_20261031.csv"):
        status, message, read = rows[name]
        assert status in ("rejected", "ignored") and message and read == 0, (name, rows[name])
    assert "link" in rows["passwd.csv"][1] and "link" in rows[f"medical_claims_{C}_20261031.csv"][1]
    assert rows[f"death_records_{C}_{AS_OF:%Y%m%d}.csv"][0] == "accepted"
    assert staged == 0  # the linked file outside the inbox was never read
    report = (warehouse / "reports" / "index.html").read_text(encoding="utf-8")
    assert "url=run_" in report, "the run report was written although a file lies at the inbox root"
    logged = "\n".join(r.getMessage() for r in caplog.records) + capfd.readouterr().err
    for name in (f"death_records_{C}_20261030.csv", f"notes_{C}_20261030.csv", "passwd.csv"):
        assert f"inbox file {name} not used" in logged, name
    assert "root:x:0:0" not in logged and pid not in logged  # neither /etc/passwd nor the linked file was read


def test_a_file_name_with_digits_of_another_script_does_not_follow_the_convention():
    """Python's `\\d` and `int()` read Arabic-Indic digits: a date or county written so is not a delivery's name."""
    good = parse_delivery_name("death_records", Path("death_records_371302_20261101.csv"))
    assert good.problem is None and good.county == "371302" and str(good.extracted_on) == "2026-11-01"
    arabic = "\u0662\u0660\u0662\u0666\u0661\u0661\u0660\u0661"  # 20261101
    for name in (f"death_records_371302_{arabic}.csv", "death_records_\u0663\u0667\u0661\u0663\u0660\u0662_20261101.csv",
                 "death_records_３７１３０２_20261101.csv"):
        d = parse_delivery_name("death_records", Path(name))
        assert d.extracted_on is None and "does not follow the delivery convention" in d.problem, name
