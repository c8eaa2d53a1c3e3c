"""The run summary for auditors: one self-contained HTML page per run, opened from disk offline.

Built from the published analysts' database only (so it can hold nothing the
analysts may not see: counts and keys, no ID numbers or names). An auditor must
be able to cite it: the header names the code version, the policy file and its
sha256, the as-of day and the run; every file is listed with its sha256, counts
and validation status; every count of flags links to a page of that rule's
flags. Pages come from Jinja2 templates (lowincome/templates/) with
autoescaping, so a delivered value (file names and messages are delivered
content) is always text, never markup. Charts are drawn as inline SVG by hand
(see `_svg`, labels escaped there), so the page needs no network.
"""

from __future__ import annotations

import functools
import html
from datetime import date
from pathlib import Path

import duckdb

from .chinese import rule_label
from .flag_volume import FLOOD_PER_1000, ROSTER_SQL, volume as flag_volume
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


def _has_table(con, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $s AND table_name = $t",
            {"s": schema, "t": table},
        ).fetchone()[0]
    )


def _bar_axis(left: float, right: float, top: float, bottom: float, peak: float, label: str) -> tuple[float, list[str]]:
    """The value axis of a horizontal bar chart: its width and the SVG of the axis, ticks and label."""
    width = _W - left - right
    body = [f"<line x1='{left}' y1='{top}' x2='{left}' y2='{_H - bottom}' stroke='#444'/>"]
    for tick in _ticks(peak):
        x = left + width * tick / peak
        body.append(f"<line x1='{x:.1f}' y1='{_H - bottom}' x2='{x:.1f}' y2='{_H - bottom + 4}' stroke='#444'/>"
                    f"<text x='{x:.1f}' y='{_H - bottom + 15}' text-anchor='middle'>{_num(tick)}</text>")
    body.append(f"<text x='{left + width / 2}' y='{_H - 3}' text-anchor='middle'>{label}</text>")
    return width, body


def _rows_chart(feed_rows: list[tuple]) -> str:
    """Rows per feed: accepted and quarantined, stacked horizontal bars."""
    left, right, top, bottom = 170, 20, 34, 30
    band = (_H - top - bottom) / max(len(feed_rows), 1)
    peak = _scale(max(((r[3] or 0) + (r[4] or 0) for r in feed_rows), default=0))
    width, body = _bar_axis(left, right, top, bottom, peak, "rows")
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
RULE_PAGE_LIMIT = 500  # flags listed per rule and county on a rule page; the rest are a query away
VALIDATION_LABEL = {"passed": "通过 passed", "warnings": "警告 warnings only", "failed": "未通过 failed",
                    "none": "未校验 not validated"}
_TEMPLATES = Path(__file__).with_name("templates")


@functools.lru_cache(maxsize=1)
def _environment():
    """Jinja2 with autoescaping on for every template: a delivered value can only ever be text in a page."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(str(_TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda v: "" if v is None else f"{v:,}"
    return env


def _records(con, sql: str, params: dict | None = None) -> list[dict]:
    cur = con.execute(sql, params or {})
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def _columns(con, schema: str, table: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $s AND table_name = $t",
        {"s": schema, "t": table}).fetchall()}


def _policy(policy: Path | None) -> dict:
    """The policy file the run used and its sha256, so an auditor can tell which thresholds were in force."""
    import hashlib

    if policy is None:
        from .config import load_settings

        try:
            policy = load_settings().policy
        except Exception:  # noqa: BLE001 - the report still says what it could not tell
            return {"path": "未知 unknown", "sha256": "未知 unknown"}
    try:
        digest = hashlib.sha256(Path(policy).read_bytes()).hexdigest()
    except OSError as exc:
        digest = f"不可读 unreadable ({exc.strerror or type(exc).__name__})"
    return {"path": str(policy), "sha256": digest}


def evidence_summary(evidence: str | None, width: int = 200) -> str:
    """One line from a flag's evidence JSON: its top-level fields, lists shown by their length."""
    import json

    if not evidence:
        return ""
    try:
        data = json.loads(evidence)
    except ValueError:
        return evidence[:width]
    if not isinstance(data, dict):
        return str(data)[:width]
    parts = []
    for key, value in data.items():
        if isinstance(value, list):
            value = f"[{len(value)} 项 items]"
        elif isinstance(value, dict):
            value = "{" + ", ".join(f"{k}: {v}" for k, v in list(value.items())[:4]) + "}"
        parts.append(f"{key}: {value}")
    line = "; ".join(parts)
    return line if len(line) <= width else line[: width - 1] + "…"


def _file_validation(con, run_id: str) -> dict[str, str]:
    """File name → passed / warnings / failed, from the run's expectation results (severity tells them apart)."""
    if not _has_table(con, "audit", "validation_results"):
        return {}
    rows = con.execute(
        """SELECT file_name,
                  count(*) FILTER (WHERE NOT success AND coalesce(severity, '') <> 'warning') AS errors,
                  count(*) FILTER (WHERE NOT success AND severity = 'warning') AS warnings
           FROM audit.validation_results WHERE run_id = $run GROUP BY file_name""", {"run": run_id}).fetchall()
    return {name: "failed" if errors else "warnings" if warnings else "passed" for name, errors, warnings in rows}


def write_run_report(warehouse: Path, as_of: date, run_id: str, policy: Path | None = None) -> Path:
    """Write reports/run_<as_of>_<run>.html (and its per-rule pages) and point reports/index.html at it.

    Everything shown comes from the published analysts' database (counts, pseudonymous keys, file names)
    and is rendered by Jinja2 templates with autoescaping (lowincome/templates/).
    """
    con = duckdb.connect(str(Path(warehouse) / ANALYSTS_DB), read_only=True)
    try:
        delivery_columns = _columns(con, "audit", "deliveries")
        sha = "sha256" if "sha256" in delivery_columns else "NULL"
        feeds = _records(con,
            """SELECT coalesce(feed, $root) AS feed, count(*) AS files, sum(rows_read) AS rows_read,
                      sum(rows_accepted) AS rows_accepted, sum(rows_quarantined) AS rows_quarantined,
                      count(*) FILTER (WHERE status IN ('rejected', 'blocked')) AS whole
               FROM audit.deliveries WHERE run_id = $run GROUP BY ALL ORDER BY feed""",
            {"run": run_id, "root": INBOX_ROOT})
        files = _records(con,
            f"""SELECT coalesce(feed, $root) AS feed, file_name, {sha} AS sha256, status, rows_read, rows_accepted,
                       rows_quarantined, coalesce(message, '') AS message
                FROM audit.deliveries WHERE run_id = $run ORDER BY feed, file_name""",
            {"run": run_id, "root": INBOX_ROOT})
        checked = _file_validation(con, run_id)
        for f in files:
            f["validation"] = checked.get(f["file_name"], "none")
        validation = []
        if _has_table(con, "audit", "validation_results"):
            validation = _records(con,
                """SELECT feed, count(*) AS expectations,
                          count(*) FILTER (WHERE NOT success AND coalesce(severity, '') <> 'warning') AS errors,
                          count(*) FILTER (WHERE NOT success AND severity = 'warning') AS warnings,
                          coalesce(sum(unexpected_count), 0) AS unexpected
                   FROM audit.validation_results WHERE run_id = $run GROUP BY feed ORDER BY feed""",
                {"run": run_id})
        stale = []
        if _has_table(con, "audit", "feed_freshness"):
            stale = _records(con,
                """SELECT feed, county, latest_delivery, stale_since, reason FROM audit.feed_freshness
                   WHERE as_of = $as_of AND stale ORDER BY feed, county""", {"as_of": as_of})
        code_version = published_at = None
        if _has_table(con, "audit", "runs"):
            found = con.execute("SELECT code_version FROM audit.runs WHERE run_id = $run", {"run": run_id}).fetchone()
            code_version = found[0] if found else None
        if _has_table(con, "audit", "publication"):
            found = con.execute("SELECT published_at FROM audit.publication").fetchone()
            published_at = found[0] if found else None
        carried, by_rule, by_county, trend, rule_pages, volume = 0, [], [], [], {}, []
        flag_columns = _columns(con, "mart", "flags")
        if flag_columns:
            if "data_stale" in flag_columns:
                carried = con.execute("SELECT count(*) FROM mart.flags WHERE data_stale AND as_of = $as_of",
                                      {"as_of": as_of}).fetchone()[0]
            by_rule = con.execute(
                "SELECT rule_id, level, count(*) FROM mart.flags WHERE status = 'open' GROUP BY ALL ORDER BY ALL"
            ).fetchall()
            name = "any_value(rule_name)" if "rule_name" in flag_columns else "''"
            by_county = _records(con,
                f"""SELECT county_code, rule_id, {name} AS rule_name, level,
                           count(*) FILTER (WHERE status = 'open') AS open, count(*) FILTER (WHERE is_new) AS new,
                           count(*) FILTER (WHERE resolved_today) AS resolved
                    FROM mart.flags GROUP BY county_code, rule_id, level ORDER BY ALL""")
            rule_pages = _write_rule_pages(con, Path(warehouse), as_of, run_id, flag_columns)
            volume = _flag_volume(con, flag_columns)  # Chinese first and flag volume (issue 11, part chinese)
        effectiveness = effectiveness_section(con)  # issue 11: rule effectiveness
        if _has_table(con, "audit", "flag_trend"):
            trend = con.execute("SELECT as_of, new_flags, resolved_flags FROM audit.flag_trend ORDER BY as_of DESC LIMIT 30").fetchall()[::-1]
    finally:
        con.close()

    from markupsafe import Markup

    rows_tuples = [(r["feed"], r["files"], r["rows_read"], r["rows_accepted"], r["rows_quarantined"], r["whole"])
                   for r in feeds]
    charts = {  # the SVG is drawn by this module, every label in it escaped (_svg): safe to insert as markup
        "rows": Markup(_rows_chart(rows_tuples)) if feeds else "",
        "flags": Markup(_flags_chart(by_rule)) if by_rule else "",
        "trend": Markup(_trend_chart(trend)) if trend else "",
    }
    page = _environment().get_template("run_report.html.j2").render(
        as_of=as_of, run_id=run_id, code_version=code_version, policy=_policy(policy), published_at=published_at,
        feeds=feeds, files=files, stale=stale, carried=carried, validation=validation, by_county=by_county,
        rule_pages=rule_pages, charts=charts, validation_label=VALIDATION_LABEL,
        rule_label=rule_label, volume=volume, flood_per_1000=FLOOD_PER_1000,
        effectiveness=effectiveness,
    )
    out_dir = Path(warehouse) / REPORTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{_page_stem(as_of, run_id)}.html"
    path.write_text(page, encoding="utf-8")
    (out_dir / "index.html").write_text(
        f"<!doctype html><meta charset='utf-8'><meta http-equiv='refresh' content='0; url={html.escape(path.name)}'>"
        f"<a href='{html.escape(path.name)}'>latest run report ({html.escape(str(as_of))})</a>",
        encoding="utf-8",
    )
    return path


def _page_stem(as_of: date, run_id: str) -> str:
    return f"run_{as_of.isoformat()}_{run_id[:8]}"


def _write_rule_pages(con, warehouse: Path, as_of: date, run_id: str, flag_columns: set[str]) -> dict[str, str]:
    """One page per rule under reports/run_<day>_<run>/: its flags by county, open first, red before orange and yellow.

    At most RULE_PAGE_LIMIT flags per county are listed (a city has hundreds of thousands); the page says how
    many more there are and gives the query. Returns rule id → the page's path relative to reports/.
    """
    wanted = ["flag_id", "rule_id", "rule_name", "subject_type", "subject_key", "county_code", "period", "level",
              "status", "first_seen_on", "evidence"]
    select = ", ".join(c if c in flag_columns else f"NULL AS {c}" for c in wanted)
    rows = _records(con,
        f"""WITH f AS (SELECT {select} FROM mart.flags),
                ranked AS (
                    SELECT *, count(*) OVER (PARTITION BY rule_id, county_code) AS county_total,
                           row_number() OVER (
                               PARTITION BY rule_id, county_code
                               ORDER BY status <> 'open', CASE level WHEN '红' THEN 0 WHEN '橙' THEN 1 ELSE 2 END,
                                        subject_key, period, flag_id) AS rank
                    FROM f)
            SELECT * FROM ranked WHERE rank <= $limit ORDER BY rule_id, county_code, rank""",
        {"limit": RULE_PAGE_LIMIT})
    folder_name = _page_stem(as_of, run_id)
    folder = warehouse / REPORTS_DIR / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    template = _environment().get_template("rule_flags.html.j2")
    pages: dict[str, str] = {}
    by_rule: dict[str, list[dict]] = {}
    for row in rows:
        by_rule.setdefault(row["rule_id"], []).append(row)
    for rule_id, flags in by_rule.items():
        counties: dict[str, dict] = {}
        for f in flags:
            f["summary"] = evidence_summary(f["evidence"])
            county = counties.setdefault(f["county_code"], {"code": f["county_code"], "total": f["county_total"],
                                                            "flags": []})
            county["flags"].append(f)
        name = f"rule_{rule_id}.html"
        (folder / name).write_text(template.render(
            rule_id=rule_id, rule_name=_rule_title(rule_id, flags[0]["rule_name"]), as_of=as_of, run_id=run_id,
            report_name=f"{folder_name}.html", counties=list(counties.values()), limit=RULE_PAGE_LIMIT,
            limit_hit=any(c["total"] > len(c["flags"]) for c in counties.values()),
        ), encoding="utf-8")
        pages[rule_id] = f"{folder_name}/{name}"
    return pages


def prune_reports(warehouse: Path, newest: date, keep_days: int) -> list[Path]:
    """Remove run report pages of as-of days more than `keep_days` before `newest` (LOWINCOME_RETENTION_DAYS).

    The pages render what `audit.runs`, `audit.deliveries` and `audit.validation_results` keep for good;
    a page can be written again from them. The newest day's pages always stay (index.html points there).
    """
    import shutil

    removed = []
    for page in (Path(warehouse) / REPORTS_DIR).glob("run_*_*"):  # a run's page and its folder of rule pages
        try:
            day = date.fromisoformat(page.name.split("_")[1])
        except (ValueError, IndexError):
            continue
        if (newest - day).days > keep_days:
            if page.is_dir():
                shutil.rmtree(page, ignore_errors=True)
            else:
                page.unlink(missing_ok=True)
            removed.append(page)
    return removed


# ---- Chinese first and flag volume (issue 11, part chinese) ------------------------------------------

def _rule_title(rule_id: str, rule_name: str | None) -> str:
    """The Chinese name first, the English name beside it (from the catalogue; the mart's name if unknown)."""
    from .rules.catalog import BY_ID

    rule = BY_ID.get(rule_id)
    return f"{rule.name_zh} {rule.name}" if rule else (rule_name or "")


def _flag_volume(con, flag_columns: set[str]) -> list[dict]:
    """Open and new flags per 1,000 roster persons, per rule and county (lowincome/flag_volume.py), 异常 first."""
    if not {"county_code", "rule_id", "status", "is_new"} <= flag_columns:
        return []
    roster = ROSTER_SQL
    if not {"file_county", "person_key", "status", "is_latest"} <= _columns(con, "staging", "civil_roster"):
        roster = "SELECT NULL::VARCHAR AS county_code, 0 AS roster_persons WHERE false"
    return flag_volume(con, "SELECT county_code, rule_id, status, is_new FROM mart.flags", roster)


# ---- issue 11: rule effectiveness (mart.rule_effectiveness) ------------------------------------
# A block of its own (the section, its chart and its query), so that other parts' edits merge beside it.

_OUTCOME_COLOR = {"confirmed": "#c0392b", "dismissed": "#7f8c8d", "open": "#2e86c1", "resolved_undecided": "#d5dbdb"}
_OUTCOME_LABEL = {"confirmed": "confirmed 确认", "dismissed": "dismissed 排除", "open": "open 待核查",
                  "resolved_undecided": "ended undecided 未核查解除"}


def rule_effectiveness(con) -> list[dict]:
    """Per rule, over every county and month raised: the cases and how they came out (mart.rule_effectiveness)."""
    if not _has_table(con, "mart", "rule_effectiveness"):
        return []
    return _records(con,
        """SELECT rule_id, any_value(rule_name_zh) AS rule_name_zh, sum(raised) AS raised, sum(confirmed) AS confirmed,
                  sum(dismissed) AS dismissed, sum(open) AS open, sum(overdue) AS overdue,
                  sum(resolved_undecided) AS resolved_undecided,
                  round(sum(confirmed) / nullif(sum(confirmed) + sum(dismissed), 0), 4) AS confirmed_rate,
                  max(median_days_to_decision) FILTER (WHERE confirmed + dismissed > 0) AS slowest_median_days
           FROM mart.rule_effectiveness GROUP BY rule_id ORDER BY rule_id""")


def _effectiveness_chart(rows: list[dict]) -> str:
    """Cases raised per rule, split by how they came out, with the confirmed rate at the end of each bar."""
    left, right, top, bottom = 60, 110, 34, 30
    band = (_H - top - bottom) / max(len(rows), 1)
    peak = _scale(max((r["raised"] or 0 for r in rows), default=0))
    width, body = _bar_axis(left, right, top, bottom, peak, "cases raised")
    for i, r in enumerate(rows):
        y = top + i * band + band * 0.15
        h = band * 0.7
        x = float(left)
        body.append(f"<text x='{left - 6}' y='{y + h / 2 + 4:.1f}' text-anchor='end'>{html.escape(str(r['rule_id']))}</text>")
        for part, color in _OUTCOME_COLOR.items():
            w = width * (r[part] or 0) / peak
            if w > 0:
                body.append(f"<rect x='{x:.1f}' y='{y:.1f}' width='{w:.1f}' height='{h:.1f}' fill='{color}'/>")
            x += w
        rate = r["confirmed_rate"]
        label = "no decision yet" if rate is None else f"{float(rate):.0%} confirmed"
        body.append(f"<text x='{x + 6:.1f}' y='{y + h / 2 + 4:.1f}'>{html.escape(label)}</text>")
    return _svg(body, "Rule effectiveness: cases by outcome, confirmed rate",
                [(_OUTCOME_LABEL[k].split(" ")[0], c) for k, c in _OUTCOME_COLOR.items()])


def effectiveness_section(con) -> dict:
    """What the report's rule-effectiveness section shows: the rows and the chart (markup drawn here, escaped)."""
    from markupsafe import Markup

    rows = rule_effectiveness(con)
    return {"rows": rows, "chart": Markup(_effectiveness_chart(rows)) if rows else ""}
