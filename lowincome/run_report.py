"""The run summary for auditors: one self-contained HTML page per run, opened from disk offline.

Built from the published analysts' database only (so it can hold nothing the
analysts may not see: counts and keys, no ID numbers or names). Every value
that comes from the database (file names and messages are delivered content)
goes through `html.escape`, so delivered markup shows as text. Charts are
drawn with matplotlib and embedded as PNG data, so the page needs no network.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import date
from pathlib import Path

import duckdb
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from .publish import ANALYSTS_DB  # noqa: E402

REPORTS_DIR = "reports"


def _cjk_font() -> None:
    """Use a CJK-capable font when one is installed; otherwise charts keep ASCII labels."""
    for name in ("Noto Sans CJK SC", "WenQuanYi Zen Hei", "Source Han Sans SC", "SimHei"):
        if any(f.name == name for f in font_manager.fontManager.ttflist):
            plt.rcParams["font.family"] = name
            return


_LEVEL_EN = {"红": "red", "橙": "orange", "黄": "yellow"}
_LEVEL_COLOR = {"红": "#c0392b", "橙": "#e67e22", "黄": "#f1c40f"}


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _table(headers: list[str], rows: list[tuple]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _has_table(con, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $s AND table_name = $t",
            {"s": schema, "t": table},
        ).fetchone()[0]
    )


def _rows_chart(feed_rows: list[tuple]) -> str:
    feeds = [r[0] for r in feed_rows]
    accepted = [r[3] for r in feed_rows]
    quarantined = [r[4] for r in feed_rows]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh(feeds, accepted, color="#2e86c1", label="accepted")
    ax.barh(feeds, quarantined, left=accepted, color="#e74c3c", label="quarantined")
    ax.set_xlabel("rows")
    ax.set_title("Rows per feed")
    ax.legend(loc="lower right")
    ax.invert_yaxis()
    return _png(fig)


def _flags_chart(by_rule: list[tuple]) -> str:
    rules = sorted({r[0] for r in by_rule})
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bottom = [0] * len(rules)
    for level in ("红", "橙", "黄"):
        values = [sum(r[2] for r in by_rule if r[0] == rule and r[1] == level) for rule in rules]
        ax.bar(rules, values, bottom=bottom, color=_LEVEL_COLOR[level], label=_LEVEL_EN[level])
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("open flags")
    ax.set_title("Open flags by rule and level")
    ax.legend()
    return _png(fig)


def _trend_chart(trend: list[tuple]) -> str:
    days = [str(r[0]) for r in trend]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(days, [r[1] for r in trend], marker="o", color="#c0392b", label="new")
    ax.plot(days, [r[2] for r in trend], marker="o", color="#27ae60", label="resolved")
    ax.set_title("New vs resolved flags, last 30 runs")
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    ax.legend()
    return _png(fig)


INBOX_ROOT = "(inbox root)"  # files lying at the inbox root belong to no feed (ASCII: the charts may lack CJK glyphs)


def write_run_report(warehouse: Path, as_of: date, run_id: str) -> Path:
    """Write reports/run_<as_of>_<run>.html and refresh reports/index.html to point at the newest run."""
    _cjk_font()
    con = duckdb.connect(str(Path(warehouse) / ANALYSTS_DB), read_only=True)
    try:
        feed_rows = con.execute(
            """SELECT coalesce(feed, $root) AS feed, count(*) AS files, sum(rows_read), sum(rows_accepted),
                      sum(rows_quarantined), count(*) FILTER (WHERE status IN ('rejected', 'blocked'))
               FROM audit.deliveries WHERE run_id = $run GROUP BY ALL ORDER BY feed""",
            {"run": run_id, "root": INBOX_ROOT},
        ).fetchall()
        files = con.execute(
            """SELECT coalesce(feed, $root) AS feed, file_name, status, rows_read, rows_accepted, rows_quarantined,
                      coalesce(message, '')
               FROM audit.deliveries WHERE run_id = $run ORDER BY feed, file_name""",
            {"run": run_id, "root": INBOX_ROOT},
        ).fetchall()
        validation = []
        if _has_table(con, "audit", "validation_results"):
            validation = con.execute(
                """SELECT feed, count(*) AS expectations, count(*) FILTER (WHERE NOT success) AS failed,
                          coalesce(sum(unexpected_count), 0)
                   FROM audit.validation_results WHERE run_id = $run GROUP BY feed ORDER BY feed""",
                {"run": run_id},
            ).fetchall()
        stale = []
        if _has_table(con, "audit", "feed_freshness"):
            stale = con.execute(
                """SELECT feed, county, latest_delivery, stale_since, reason FROM audit.feed_freshness
                   WHERE as_of = $as_of AND stale ORDER BY feed, county""",
                {"as_of": as_of},
            ).fetchall()
        carried = 0
        if _has_table(con, "mart", "flags") and "data_stale" in [
                r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                          "WHERE table_schema = 'mart' AND table_name = 'flags'").fetchall()]:
            carried = con.execute("SELECT count(*) FROM mart.flags WHERE data_stale AND as_of = $as_of",
                                  {"as_of": as_of}).fetchone()[0]
        by_rule, by_county, trend = [], [], []
        if _has_table(con, "mart", "flags"):
            by_rule = con.execute(
                "SELECT rule_id, level, count(*) FROM mart.flags WHERE status = 'open' GROUP BY ALL ORDER BY ALL"
            ).fetchall()
            by_county = con.execute(
                """SELECT county_code, rule_id, level, count(*) FILTER (WHERE status = 'open') AS open,
                          count(*) FILTER (WHERE is_new) AS new, count(*) FILTER (WHERE resolved_today) AS resolved
                   FROM mart.flags GROUP BY ALL ORDER BY ALL"""
            ).fetchall()
        if _has_table(con, "audit", "flag_trend"):
            trend = con.execute("SELECT as_of, new_flags, resolved_flags FROM audit.flag_trend ORDER BY as_of DESC LIMIT 30").fetchall()[::-1]
    finally:
        con.close()

    sections = [
        f"<h1>Nightly run as of {as_of}</h1><p class='meta'>run {html.escape(run_id)}</p>",
        "<p><a href='validation/index.html'>Validation report of every delivery (Great Expectations Data Docs)</a></p>",
        "<h2>Deliveries</h2>",
        _table(["feed", "files", "rows read", "accepted", "quarantined", "files rejected/blocked"], feed_rows),
    ]
    if feed_rows:
        sections.append(f"<img alt='rows per feed' src='{_rows_chart(feed_rows)}'>")
    sections += ["<h3>Files</h3>", _table(["feed", "file", "status", "read", "accepted", "quarantined", "message"], files)]
    sections.append("<h2>数据时效 Stale data</h2>")
    if stale:
        sections.append(
            f"<p>{len(stale)} feed(s) of a county rest on stale data. Flags that depend on them are carried "
            f"forward, not resolved ({carried} flag(s) carried in this publication).</p>")
        sections.append(_table(["feed", "county", "newest delivery in use", "stale since", "why"], stale))
    else:
        sections.append("<p>Every feed of every county is fresh.</p>")
    sections.append("<h2>Validation</h2>")
    sections.append(
        _table(["feed", "expectations evaluated", "failed", "unexpected values"], validation)
        if validation else "<p>No expectation results recorded for this run.</p>"
    )
    sections.append("<h2>Flags</h2>")
    if by_rule:
        sections.append(f"<img alt='open flags by rule' src='{_flags_chart(by_rule)}'>")
        sections.append(_table(["county", "rule", "level", "open", "new", "resolved today"], by_county))
    else:
        sections.append("<p>No flags in this publication.</p>")
    if trend:
        sections.append(f"<img alt='new vs resolved' src='{_trend_chart(trend)}'>")
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>lowincome-monitor run {as_of}</title><style>{_CSS}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>"
    )
    out_dir = Path(warehouse) / REPORTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"run_{as_of.isoformat()}_{run_id[:8]}.html"
    path.write_text(page, encoding="utf-8")
    (out_dir / "index.html").write_text(
        f"<!doctype html><meta charset='utf-8'><meta http-equiv='refresh' content='0; url={html.escape(path.name)}'>"
        f"<a href='{html.escape(path.name)}'>latest run report ({html.escape(str(as_of))})</a>",
        encoding="utf-8",
    )
    return path


def prune_reports(warehouse: Path, newest: date, keep_days: int) -> list[Path]:
    """Remove run report pages of as-of days more than `keep_days` before `newest` (LOWINCOME_RETENTION_DAYS).

    The pages render what `audit.runs`, `audit.deliveries` and `audit.validation_results` keep for good;
    a page can be written again from them. The newest day's pages always stay (index.html points there).
    """
    removed = []
    for page in (Path(warehouse) / REPORTS_DIR).glob("run_*_*.html"):
        try:
            day = date.fromisoformat(page.name.split("_")[1])
        except (ValueError, IndexError):
            continue
        if (newest - day).days > keep_days:
            page.unlink(missing_ok=True)
            removed.append(page)
    return removed


_CSS = """
body { font-family: system-ui, 'Noto Sans CJK SC', sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f4f7; } .meta { color: #777; } img { max-width: 100%; }
"""
