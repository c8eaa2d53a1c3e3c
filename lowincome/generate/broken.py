"""File-level failures: deliveries that cannot be read at all.

Written to a separate folder (not the sample inbox) so the demo stays clean;
tests copy them into an inbox to check that each is reported per file with a
clear message and does not stop the other files or feeds.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

HEADER = "结算ID,身份证号,姓名,参保地行政区划,结算日期,就诊类型,医疗总费用,基本医保统筹支付,大病保险支付,医疗救助支付,个人自付,主要诊断编码\n"


def write_broken_inbox(folder: Path, end: date) -> list[dict]:
    """Write one file per file-level problem; return [{feed, file, problem}]."""
    d = f"{end:%Y%m%d}"
    files = {
        ("medical_claims", f"medical_claims_371311_{d}.csv"): (b"", "empty file"),
        ("death_records", f"death_records_371311_{d}.csv"): (
            "身份证号,姓名,信息来源\n371311195001011234,张三,殡葬火化\n".encode("utf-8"), "missing required column 死亡日期"),
        ("subsidy_payments", f"subsidy_payments_371311_{d}.xlsx"): (b"PK\x03\x04 this is not a workbook", "unreadable .xlsx"),
        ("hrss_benefits", f"hrss_benefits_371311_{d}.csv"): (
            "身份证号,姓名,项目,月份,金额\n".encode("utf-16"), "undetectable encoding (UTF-16)"),
        ("disability_cert", f"disability_cert_371311_{d}.parquet"): (b"PAR1 truncated", "unreadable .parquet"),
        ("medical_claims", f"medical_claims_371312_{d}.csv"): (HEADER.encode("utf-8"), "header only, no rows"),
    }
    out = []
    for (feed, name), (data, problem) in files.items():
        path = folder / feed / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append({"feed": feed, "file": name, "problem": problem})
    return out
