"""One Chinese line per flag saying what the evidence shows, for worklists and the run report.

A caseworker reads the worklist, not the evidence JSON: the line must say, in
words, what two sources disagree about (e.g. "2026年3月死亡，4–10月仍发放低保金共
4,900 元"). The line is built from the evidence alone, so it never needs a
query. It carries no ID number or name (the evidence holds only keys, dates,
amounts and file names).

This first version is generic (rule name, period, the evidence's fields); the
per-rule sentences belong with the evidence each rule writes (issue 11).
"""

from __future__ import annotations

import json

from .catalog import BY_ID


def evidence_summary_zh(rule_id: str, evidence: str | dict | None, period: str | None = None,
                        width: int = 200) -> str:
    """The flag's one-line summary, Chinese first; never longer than `width` characters."""
    rule = BY_ID.get(rule_id)
    head = rule.name_zh if rule is not None else rule_id
    if period:
        head += f"（{period}）"
    data = evidence
    if isinstance(evidence, str):
        try:
            data = json.loads(evidence)
        except ValueError:
            data = None
    parts = []
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, list):
                value = f"{len(value)} 项"
            elif isinstance(value, dict):
                value = "{" + ", ".join(f"{k}: {v}" for k, v in list(value.items())[:4]) + "}"
            parts.append(f"{key}: {value}")
    line = head + ("：" + "；".join(parts) if parts else "")
    return line if len(line) <= width else line[: width - 1] + "…"
