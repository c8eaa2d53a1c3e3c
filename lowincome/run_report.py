"""The run summary for auditors: one self-contained HTML page per run, opened from disk offline.

Built from the published analysts' database only (so it can hold nothing the
analysts may not see: counts and keys, no ID numbers or names). Every value
that comes from the database (file names and messages are delivered content)
goes through `html.escape`, so delivered markup shows as text. Charts are
drawn as inline SVG (by hand, see `_svg`), so the page needs no network.
"""

from __future__ import annotations

import html
from datetime import date
from pathlib import Path

import duckdb

from .publish import ANALYSTS_DB

REPORTS_DIR = "reports"

# The charts are drawn as SVG by hand: three bar and line charts do not need a plotting library, and
# importing and running matplotlib cost about 1.5 s of CPU every night (issue 9: fixed costs). They are
# inline in the page, as text that can be searched (the privacy tests read every page), and every label
# taken from the database (a folder name is delivered content) goes through `html.escape`.
_LEVEL_EN = {"红": "red", "橙": "orange", "黄": "yellow"}
_LEVEL_COLOR = {"红": "#c0392b", "橙": "#e67e22", "黄": "#f1c40f"}
_W, _H = 700, 320  # the charts' size in pixels (the earlier PNGs were 7 x 3.2 inches)
_FONT = "font-family='system-ui, Noto Sans CJK SC, sans-serif' font-size='11'"


def _svg(body: list[str], title: str, legend: list[tuple[str, str]]) -> str:
    """An inline SVG chart (title, body, legend); every text in it is escaped by the callers or here."""
    items = []
    x = _W - 10
    for label, color in reversed(legend):
        x -= 8 + 7 * len(label) + 14
        items.append(f"<rect x='{x}' y='8' width='10' height='10' fill='{color}'/>"
                     f"<text x='{x + 14}' y='17'>{html.escape(label)}</text>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' role='img' aria-label='{html.escape(title)}' width='{_W}' "
            f"height='{_H}' viewBox='0 0 {_W} {_H}' {_FONT}>"
            f"<rect width='{_W}' height='{_H}' fill='white'/>"
            f"<text x='{_W / 2}' y='18' text-anchor='middle' font-size='13'>{html.escape(title)}</text>"
            + "".join(items) + "".join(body) + "</svg>")


def _scale(top: float) -> float:
    return float(top) if top and top > 0 else 1.0


def _ticks(top: float, n: int = 4) -> list[float]:
    return [top * k / n for k in range(n + 1)]


def _num(v: float) -> str:
    return f"{v:,.0f}"


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
    """Rows per feed: accepted and quarantined, stacked horizontal bars."""
    left, right, top, bottom = 170, 20, 34, 30
    band = (_H - top - bottom) / max(len(feed_rows), 1)
    peak = _scale(max(((r[3] or 0) + (r[4] or 0) for r in feed_rows), default=0))
    width = _W - left - right
    body = [f"<line x1='{left}' y1='{top}' x2='{left}' y2='{_H - bottom}' stroke='#444'/>"]
    for tick in _ticks(peak):
        x = left + width * tick / peak
        body.append(f"<line x1='{x:.1f}' y1='{_H - bottom}' x2='{x:.1f}' y2='{_H - bottom + 4}' stroke='#444'/>"
                    f"<text x='{x:.1f}' y='{_H - bottom + 15}' text-anchor='middle'>{_num(tick)}</text>")
    body.append(f"<text x='{left + width / 2}' y='{_H - 3}' text-anchor='middle'>rows</text>")
    for i, r in enumerate(feed_rows):
        y = top + i * band + band * 0.15
        h = band * 0.7
        accepted, quarantined = (r[3] or 0), (r[4] or 0)
        wa, wq = width * accepted / peak, width * quarantined / peak
        body.append(f"<text x='{left - 6}' y='{y + h / 2 + 4:.1f}' text-anchor='end'>{html.escape(str(r[0]))}</text>"
                    f"<rect x='{left}' y='{y:.1f}' width='{wa:.1f}' height='{h:.1f}' fill='#2e86c1'/>"
                    f"<rect x='{left + wa:.1f}' y='{y:.1f}' width='{wq:.1f}' height='{h:.1f}' fill='#e74c3c'/>")
    return _svg(body, "Rows per feed", [("accepted", "#2e86c1"), ("quarantined", "#e74c3c")])


def _flags_chart(by_rule: list[tuple]) -> str:
    """Open flags by rule, stacked by level."""
    rules = sorted({r[0] for r in by_rule})
    left, right, top, bottom = 60, 20, 34, 30
    totals = {rule: sum(r[2] for r in by_rule if r[0] == rule) for rule in rules}
    peak = _scale(max(totals.values(), default=0))
    height = _H - top - bottom
    band = (_W - left - right) / max(len(rules), 1)
    body = [f"<line x1='{left}' y1='{_H - bottom}' x2='{_W - right}' y2='{_H - bottom}' stroke='#444'/>"]
    for tick in _ticks(peak):
        y = _H - bottom - height * tick / peak
        body.append(f"<line x1='{left - 4}' y1='{y:.1f}' x2='{left}' y2='{y:.1f}' stroke='#444'/>"
                    f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end'>{_num(tick)}</text>")
    body.append(f"<text x='14' y='{top + height / 2}' transform='rotate(-90 14 {top + height / 2})' "
                f"text-anchor='middle'>open flags</text>")
    for i, rule in enumerate(rules):
        x = left + i * band + band * 0.15
        w = band * 0.7
        base = 0
        for level in ("红", "橙", "黄"):
            value = sum(r[2] for r in by_rule if r[0] == rule and r[1] == level)
            if value:
                h = height * value / peak
                y = _H - bottom - height * (base + value) / peak
                body.append(f"<rect x='{x:.1f}' y='{y:.1f}' width='{w:.1f}' height='{h:.1f}' fill='{_LEVEL_COLOR[level]}'/>")
            base += value
        body.append(f"<text x='{x + w / 2:.1f}' y='{_H - bottom + 15}' text-anchor='middle'>{html.escape(str(rule))}</text>")
    return _svg(body, "Open flags by rule and level", [(_LEVEL_EN[k], c) for k, c in _LEVEL_COLOR.items()])


def _trend_chart(trend: list[tuple]) -> str:
    """New and resolved flags of the last runs, one point per day."""
    left, right, top, bottom = 60, 20, 34, 60
    peak = _scale(max((max(r[1] or 0, r[2] or 0) for r in trend), default=0))
    height, width = _H - top - bottom, _W - left - right
    step = width / max(len(trend) - 1, 1)
    body = [f"<line x1='{left}' y1='{_H - bottom}' x2='{_W - right}' y2='{_H - bottom}' stroke='#444'/>"]
    for tick in _ticks(peak):
        y = _H - bottom - height * tick / peak
        body.append(f"<line x1='{left - 4}' y1='{y:.1f}' x2='{left}' y2='{y:.1f}' stroke='#444'/>"
                    f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end'>{_num(tick)}</text>")
    for i, r in enumerate(trend):
        x = left + i * step
        body.append(f"<text x='{x:.1f}' y='{_H - bottom + 12}' font-size='9' text-anchor='end' "
                    f"transform='rotate(-60 {x:.1f} {_H - bottom + 12})'>{html.escape(str(r[0]))}</text>")
    for column, color in ((1, "#c0392b"), (2, "#27ae60")):
        points = [(left + i * step, _H - bottom - height * (r[column] or 0) / peak) for i, r in enumerate(trend)]
        body.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' "
                    f"points='{' '.join(f'{x:.1f},{y:.1f}' for x, y in points)}'/>")
        body += [f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{color}'/>" for x, y in points]
    return _svg(body, "New vs resolved flags, last 30 runs", [("new", "#c0392b"), ("resolved", "#27ae60")])


INBOX_ROOT = "(inbox root)"  # files lying at the inbox root belong to no feed (ASCII: the charts may lack CJK glyphs)


def write_run_report(warehouse: Path, as_of: date, run_id: str) -> Path:
    """Write reports/run_<as_of>_<run>.html and refresh reports/index.html to point at the newest run."""
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
        sections.append(_rows_chart(feed_rows))
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
        sections.append(_flags_chart(by_rule))
        sections.append(_table(["county", "rule", "level", "open", "new", "resolved today"], by_county))
    else:
        sections.append("<p>No flags in this publication.</p>")
    if trend:
        sections.append(_trend_chart(trend))
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
