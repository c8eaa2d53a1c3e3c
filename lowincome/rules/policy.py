"""Policy parameters: loaded from YAML, validated, resolved per county for an as-of date.

Thresholds are policy (rules.md): they change by county and over time, so the
rules never hold a number. A missing or malformed value stops the run with a
message naming the file and the key, because a flag computed against a wrong
standard is worse than no flag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import yaml

from ..errors import LowincomeError

# name -> (type, minimum, maximum): every parameter the rules and the delivery guard read.
# Bounds are wide enough for any real policy and narrow enough to catch a typo (an extra zero, a share
# given in percent); numbers must be finite (YAML's .nan and .inf are refused).
PARAMETERS: dict[str, tuple[type, float | None, float | None]] = {
    "urban_dibao_standard_monthly": (float, 1, 100_000),
    "rural_dibao_standard_yearly": (float, 1, 1_000_000),
    "tekun_multiplier": (float, 1, 10),
    "dibao_edge_multiplier": (float, 1, 10),
    "monitoring_income_line_yearly": (float, 1, 1_000_000),
    "outcome_overdue_days": (int, 1, 365),
    "employment_grace_months": (int, 0, 36),
    "recent_window_days": (int, 1, 3650),
    "medical_lookback_days": (int, 1, 3650),
    "living_subsidy_includes_dibao_edge": (bool, None, None),
    "death_shock_age_min": (int, 0, 150),
    "death_shock_age_max": (int, 0, 150),
    "medical_red_share": (float, 0, 100),
    "medical_red_amount": (float, 0, 100_000_000),
    "medical_orange_share": (float, 0, 100),
    "medical_orange_amount": (float, 0, 100_000_000),
    "medical_yellow_share": (float, 0, 100),
    "medical_yellow_amount": (float, 0, 100_000_000),
    "proactive_discovery_amount": (float, 0, 100_000_000),
    # Completeness guard (feeds.md "Holding back a file", rules.md "Stale data resolves nothing"):
    # a snapshot older than this many days, or an increment with no delivery for this many days, is stale.
    "snapshot_stale_days": (int, 1, 3650),
    "increment_stale_days": (int, 1, 3650),
    # A snapshot whose row count drops by more than this share from the county's previous snapshot is held back.
    "snapshot_shrink_share": (float, 0, 1),
}
# Severity thresholds that must not cross: red ≥ orange ≥ yellow (shares and amounts).
ORDERED = (
    ("medical_red_share", "medical_orange_share", "medical_yellow_share"),
    ("medical_red_amount", "medical_orange_amount", "medical_yellow_amount"),
    ("medical_red_amount", "proactive_discovery_amount"),
)
DEFAULT_COUNTY = "*"


class PolicyError(LowincomeError):
    pass


@dataclass(frozen=True)
class Policy:
    path: Path
    default: list[dict]
    counties: dict[str, list[dict]]
    # The counties this warehouse serves (policy key `served_counties`): a delivery from any other
    # county is rejected, so a one-digit typo in a file name cannot invent a county.
    served_counties: tuple[str, ...] = ()

    def in_force(self, county: str, as_of: date) -> dict:
        """Parameters for `county` on `as_of`: default period in force, overridden by the county's period in force."""
        values = dict(_period_in_force(self.default, as_of, self.path, "default"))
        values.update(_period_in_force(self.counties.get(county, []), as_of, self.path, f"counties.{county}", required=False))
        values.pop("effective_from", None)
        _check_order(values, self.path, f"counties.{county}" if county in self.counties else "default", as_of)
        return values

    def check_all_periods(self) -> None:
        """Resolve every county on every effective date: an override that breaks an order fails at load."""
        dates = {p["effective_from"] for p in self.default}
        for periods in self.counties.values():
            dates |= {p["effective_from"] for p in periods}
        first = min(p["effective_from"] for p in self.default)
        for day in sorted(d for d in dates if d >= first):
            for county in [DEFAULT_COUNTY, *self.counties]:
                self.in_force(county, day)

    def table(self, counties: list[str], as_of: date) -> pl.DataFrame:
        """One row per county (and '*' for counties the file does not name) with the values in force."""
        rows = [{"county_code": c, **self.in_force(c, as_of)} for c in sorted(set(counties) | set(self.counties))]
        rows.append({"county_code": DEFAULT_COUNTY, **self.in_force(DEFAULT_COUNTY, as_of)})
        return pl.DataFrame(rows, schema={"county_code": pl.String, **{k: _pl_type(t) for k, (t, _, _) in PARAMETERS.items()}})


def _pl_type(t: type):
    return {float: pl.Float64, int: pl.Int64, bool: pl.Boolean}[t]


def _period_in_force(periods: list[dict], as_of: date, path: Path, where: str, required: bool = True) -> dict:
    eligible = [p for p in periods if p["effective_from"] <= as_of]
    if not eligible:
        if required:
            raise PolicyError(f"policy file {path}: no period of '{where}' is in force on {as_of} (earliest effective_from is "
                              f"{min(p['effective_from'] for p in periods)})")
        return {}
    return max(eligible, key=lambda p: p["effective_from"])


def _check_period(raw: object, path: Path, where: str, complete: bool) -> dict:
    if not isinstance(raw, dict):
        raise PolicyError(f"policy file {path}: {where} must be a mapping of parameter: value")
    if "effective_from" not in raw:
        raise PolicyError(f"policy file {path}: {where}.effective_from is missing")
    eff = raw["effective_from"]
    if isinstance(eff, str):
        try:
            eff = date.fromisoformat(eff)
        except ValueError:
            raise PolicyError(f"policy file {path}: {where}.effective_from '{eff}' is not a date (YYYY-MM-DD)") from None
    if not isinstance(eff, date):
        raise PolicyError(f"policy file {path}: {where}.effective_from must be a date (YYYY-MM-DD)")
    out: dict = {"effective_from": eff}
    for key, value in raw.items():
        if key == "effective_from":
            continue
        if key not in PARAMETERS:
            raise PolicyError(f"policy file {path}: {where}.{key} is not a known parameter (known: {', '.join(PARAMETERS)})")
        kind, minimum, maximum = PARAMETERS[key]
        if kind is bool:
            if not isinstance(value, bool):
                raise PolicyError(f"policy file {path}: {where}.{key} must be true or false, not {value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (kind is int and not float(value).is_integer()):
            raise PolicyError(f"policy file {path}: {where}.{key} must be a finite {'whole ' if kind is int else ''}"
                              f"number, not {value!r}")
        elif minimum is not None and value < minimum:
            raise PolicyError(f"policy file {path}: {where}.{key} must be at least {minimum:g}, not {value}")
        elif maximum is not None and value > maximum:
            raise PolicyError(f"policy file {path}: {where}.{key} must be at most {maximum:g}, not {value}")
        out[key] = kind(value)
    if complete:
        missing = [k for k in PARAMETERS if k not in out]
        if missing:
            raise PolicyError(f"policy file {path}: {where} lacks {', '.join(missing)}")
    if complete:
        _check_order(out, path, where, None)
    return out


def _check_order(values: dict, path: Path, where: str, as_of: date | None) -> None:
    when = f" (in force on {as_of})" if as_of else ""
    if values.get("death_shock_age_min", 0) > values.get("death_shock_age_max", 200):
        raise PolicyError(f"policy file {path}: {where}.death_shock_age_min is above death_shock_age_max{when}")
    for chain in ORDERED:
        present = [k for k in chain if k in values]
        for high, low in zip(present, present[1:]):
            if values[high] < values[low]:
                raise PolicyError(f"policy file {path}: {where}.{high} ({values[high]:g}) must not be below "
                                  f"{low} ({values[low]:g}){when}")


def load_policy(path: Path) -> Policy:
    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"policy file not found: {path} (set LOWINCOME_POLICY)")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PolicyError(f"policy file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict) or "default" not in doc:
        raise PolicyError(f"policy file {path}: the top level must hold 'default' (and optionally 'counties')")
    if not isinstance(doc["default"], list) or not doc["default"]:
        raise PolicyError(f"policy file {path}: 'default' must be a list of periods")
    default = [_check_period(p, path, f"default[{i}]", complete=True) for i, p in enumerate(doc["default"])]
    counties: dict[str, list[dict]] = {}
    for county, periods in (doc.get("counties") or {}).items():
        county = str(county)
        if len(county) != 6 or not county.isdigit():
            raise PolicyError(f"policy file {path}: counties.{county} is not a 6-digit county code")
        if not isinstance(periods, list):
            raise PolicyError(f"policy file {path}: counties.{county} must be a list of periods")
        counties[county] = [_check_period(p, path, f"counties.{county}[{i}]", complete=False) for i, p in enumerate(periods)]
    served = _served_counties(doc.get("served_counties"), path)
    policy = Policy(path, default, counties, served)
    policy.check_all_periods()
    return policy


def _served_counties(raw: object, path: Path) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise PolicyError(f"policy file {path}: 'served_counties' must list the 6-digit county codes this warehouse "
                          "serves (e.g. served_counties: [\"371302\", \"371324\"])")
    codes = []
    for value in raw:
        code = str(value)
        if len(code) != 6 or not code.isdigit():
            raise PolicyError(f"policy file {path}: served_counties: '{code}' is not a 6-digit county code")
        codes.append(code)
    return tuple(sorted(set(codes)))
