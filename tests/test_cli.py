"""The command line drives the same job and fails with one clear line."""

from __future__ import annotations

import shutil

import pytest

from lowincome.cli import main

from .conftest import SAMPLE_END


def test_run_succeeds_and_prints_a_summary(generated, lowincome_env, tmp_path, capsys):
    out, _ = generated
    warehouse = lowincome_env(out / "inbox")
    assert main(["run", "--as-of", SAMPLE_END.isoformat(), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert f"as of {SAMPLE_END}" in printed.out and "rows read" in printed.out
    assert len(printed.out.strip().splitlines()) == 1 and printed.err.strip() == ""  # --quiet: the summary line only
    assert (warehouse / "lowincome.duckdb").exists() and (warehouse / "restricted.duckdb").exists()


def test_missing_inbox_is_one_clear_line(lowincome_env, tmp_path, capsys):
    lowincome_env(tmp_path / "no-such-inbox")
    assert main(["run", "--as-of", "2026-10-31", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "inbox folder not found" in err[0]


def test_production_without_key_refuses_to_start(generated, lowincome_env, monkeypatch, capsys):
    out, _ = generated
    lowincome_env(out / "inbox")
    monkeypatch.setenv("LOWINCOME_ENV", "production")
    assert main(["run", "--as-of", "2026-10-31", "--quiet"]) == 1
    assert "LOWINCOME_PSEUDONYM_KEY" in capsys.readouterr().err


def test_bad_as_of_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--as-of", "31/10/2026"])
    assert exc.value.code == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_generate_writes_an_inbox(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path / "g"), "--seed", "3", "--scale", "0.5"]) == 0
    assert any((tmp_path / "g" / "inbox" / "medical_claims").iterdir())


def test_version_and_allow_empty_option(lowincome_env, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    from lowincome import __version__
    from lowincome.lineage import code_version

    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"lowincome {code_version()}"
    assert code_version().startswith(f"{__version__}+")
    from pipelines.resources import LowincomeResource

    empty = tmp_path / "empty-inbox"
    empty.mkdir()
    lowincome_env(empty)
    if "allow_empty" not in LowincomeResource.model_fields:
        # until the completeness guard adds the field, the option is refused in one line rather than ignored
        assert main(["run", "--as-of", "2026-10-31", "--quiet", "--allow-empty"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--allow-empty is not supported" in err[0]
    else:
        from lowincome.cli import _run_config

        assert _run_config(True, True)["resources"] == {"lowincome": {"config": {"allow_empty": True}}}
        assert main(["run", "--as-of", "2026-10-31", "--quiet", "--allow-empty"]) == 0


def test_run_help_lists_every_setting_the_code_reads(capsys):
    """Every LOWINCOME_* name the code reads (found by scanning the sources, not from the help's own list)
    appears in `run --help` with a default; the help also describes the command."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    read = set()
    for folder in ("lowincome", "pipelines", "assets", "checks"):
        for source in (root / folder).rglob("*.py"):
            read |= set(re.findall(r"LOWINCOME_[A-Z_]+[A-Z]", source.read_text(encoding="utf-8")))
    assert {"LOWINCOME_INBOX", "LOWINCOME_WAREHOUSE", "LOWINCOME_MEMORY_LIMIT"} <= read
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "夜间作业" in text and "last publication stays in place" in text
    lines = text.splitlines()
    for name in sorted(read):
        at = [i for i, line in enumerate(lines) if line.strip().startswith(name + " ")]
        assert at, f"{name} is read by the code but missing from `run --help`"
        assert "default" in lines[at[0] + 1], f"{name} has no default line in `run --help`"


def test_progress_lines_name_each_file_read_and_are_silent_with_quiet(generated, lowincome_env, capsys):
    """Without --quiet: the start at once, then one line per file read and validated (with rows and rows/s);
    a re-run reads nothing new and prints no file line; --quiet prints the summary line only."""
    import re

    out, _ = generated
    inbox = out / "inbox"
    lowincome_env(inbox)
    delivered = sorted(p.name for p in inbox.rglob("*") if p.is_file())  # counted without the pipeline
    assert main(["run", "--as-of", SAMPLE_END.isoformat()]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "starting" in err[0] and "progress" in err[0]
    files = [m.group(1) for line in err
             if (m := re.search(r"progress - \w+ \[\d+/\d+\] (\S+): [\d,]+ rows read and validated .* rows/s", line))]
    assert sorted(files) == delivered
    assert main(["run", "--as-of", SAMPLE_END.isoformat()]) == 0
    again = capsys.readouterr().err
    assert "starting" in again and "rows read and validated" not in again


def test_a_relative_warehouse_is_readable_from_any_directory(generated, lowincome_env, monkeypatch, tmp_path):
    """LOWINCOME_WAREHOUSE=warehouse (relative, the default's form): the analysts' views still find their parts
    when the database is opened from another directory."""
    import duckdb

    out, _ = generated
    lowincome_env(out / "inbox")
    (tmp_path / "start").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "start")
    monkeypatch.setenv("LOWINCOME_WAREHOUSE", "warehouse")
    assert main(["run", "--as-of", SAMPLE_END.isoformat(), "--quiet"]) == 0
    monkeypatch.chdir(tmp_path / "elsewhere")
    con = duckdb.connect(str(tmp_path / "start" / "warehouse" / "lowincome.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT count(*) FROM staging.civil_roster").fetchone()[0]
        rejected = con.execute("SELECT count(*) FROM quarantine.rejected_rows").fetchone()[0]
    finally:
        con.close()
    assert rows > 0 and rejected > 0
