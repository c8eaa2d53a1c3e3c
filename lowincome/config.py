"""Settings from the environment, each with a default that works from a fresh clone.

outputs.md fixes the variable names; this is the one place that reads them so
the CLI, the Dagster resources and the tests agree on defaults.

Every value is checked here and a value that is unknown or malformed is
refused with one line naming the variable, the value and what is accepted:
a typo must never run the pipeline in another mode or with another budget
than the one the operator meant (issue 8, "settings that are silently ignored").
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import ConfigError

SPILL_DIR = "tmp"  # under <warehouse>/work/: DuckDB's spill files (lowincome/spill.py)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INBOX = REPO_ROOT / "data_samples" / "inbox"
DEFAULT_WAREHOUSE = Path("warehouse")
DEFAULT_POLICY = Path(__file__).resolve().parent / "policy" / "default.yaml"
# Clearly marked: usable for samples and tests only. Production mode refuses it.
DEV_PSEUDONYM_KEY = "DEVELOPMENT-ONLY-pseudonym-key-do-not-use-in-production"

ENVIRONMENTS = ("development", "production")
# The whole run's memory budget (outputs.md): a 4 GiB machine share leaves room for Python and Polars.
DEFAULT_MEMORY_LIMIT = "3GB"
# DuckDB's size units: decimal (KB = 1000) and binary (KiB = 1024).
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$")
MIN_MEMORY_BYTES = 128 * 10**6  # below this not even the rules of a small county fit
DEFAULT_SETTLE_SECONDS = 120
# Below this many rows in the previous delivery of a feed and county, the volume check is recorded but
# not judged: a count of a few dozen events (deaths, new certificates) moves by more than 30% from month
# to month by chance alone (about ±2 standard deviations at 40 rows), so failing it would only teach
# auditors to ignore the check.
DEFAULT_VOLUME_MIN_ROWS = 100
DEFAULT_RETENTION_DAYS = 7
# A feed whose readable files hold less than this is read in one ingestion step for all its counties
# (a step out of process costs about half a CPU second before it reads a row); from this size up, one
# step per county. 0: always one step per county.
DEFAULT_FANOUT_MIN_MB = 64
# The rules run as this many steps, each over a group of counties with the rows its subjects depend on
# from any county (lowincome/rules/routing.py); 1: one step over every county, no routing. `lowincome run
# --workers N` uses N when the variable is unset.
DEFAULT_RULE_STEPS = 1


# Every setting the pipeline reads, with its default and meaning, Chinese first: the one list that
# `lowincome run --help` prints and that a test checks against the names this module reads.
SETTINGS_HELP: tuple[tuple[str, str, str], ...] = (
    ("LOWINCOME_INBOX", "data_samples/inbox (the bundled samples)",
     "收件箱 inbox: <inbox>/<feed>/<feed>_<county6>_<YYYYMMDD>.<csv|xlsx|parquet>"),
    ("LOWINCOME_WAREHOUSE", "warehouse/", "数据仓库 warehouse: published databases, reports and working storage"),
    ("LOWINCOME_POLICY", "lowincome/policy/default.yaml", "政策参数 policy file: standards, thresholds, windows per county"),
    ("LOWINCOME_PSEUDONYM_KEY", "a development key (refused in production)",
     "假名密钥 secret for the analysts' pseudonymous keys (at least 32 characters in production)"),
    ("LOWINCOME_ENV", "development", "运行环境 development or production (production needs inbox, warehouse and a real key)"),
    ("LOWINCOME_BLOCKING_SHARE", "0.05", "拦截比例 share of rejected rows above which a snapshot is held back (0 to 1)"),
    ("LOWINCOME_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT,
     "内存预算 DuckDB's budget in DuckDB syntax (4GB, 1.5GB, 512MB; at least 128MB); spills to <warehouse>/work/tmp"),
    ("LOWINCOME_RUN_MEMORY_LIMIT", "unset (set by lowincome run --workers N for its steps)",
     "整次运行预算 the whole run's budget, passed by `--workers N` to its step processes beside their 1/N share "
     "in LOWINCOME_MEMORY_LIMIT: the publishing step, which runs alone, uses it"),
    ("LOWINCOME_RETENTION_DAYS", str(DEFAULT_RETENTION_DAYS),
     "保留天数 days per-night artifacts (run folders, report pages, unreferenced analysts' parts) are kept"),
    ("LOWINCOME_RESTRICTED_GROUP", "unset (owner only)", "受限文件组 group given read access to restricted files (0640)"),
    ("LOWINCOME_VOLUME_MIN_ROWS", str(DEFAULT_VOLUME_MIN_ROWS),
     "数量检查下限 the volume check (±30% from the previous delivery) is recorded but not judged when the "
     "previous delivery had fewer rows than this"),
    ("LOWINCOME_FANOUT_MIN_MB", str(DEFAULT_FANOUT_MIN_MB),
     "分县步骤下限 a feed whose files to read hold fewer MB than this is read in one step for all its counties; "
     "from this size up, one step per county (0: always per county)"),
    ("LOWINCOME_RULE_STEPS", f"{DEFAULT_RULE_STEPS} (lowincome run --workers N: N)",
     "规则步骤数 the rules run as this many steps, each over a group of counties with the rows its people and "
     "households have in any county; 1: one step over all counties"),
    ("LOWINCOME_SETTLE_SECONDS", str(DEFAULT_SETTLE_SECONDS),
     "静置秒数 seconds a file must stay unchanged before the inbox sensor asks for a run"),
    ("LOWINCOME_CELERY_BROKER", "unset (no Celery)",
     "消息代理 Celery broker URL for `lowincome run --celery` and the Celery workers, e.g. redis://host:6379/0"),
)


def settings_help() -> str:
    """The settings as an aligned text block, for `--help`."""
    width = max(len(name) for name, _, _ in SETTINGS_HELP)
    lines = ["settings (environment variables) 配置项:"]
    for name, default, meaning in SETTINGS_HELP:
        lines.append(f"  {name:<{width}}  {meaning}")
        lines.append(f"  {'':<{width}}  default 默认: {default}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Settings:
    inbox: Path
    warehouse: Path
    policy: Path
    pseudonym_key: str
    production: bool
    # Share of invalid rows above which a whole delivery is held back (issue: blocking deliveries).
    blocking_share: float = 0.05
    # The whole run's memory budget, as written (DuckDB syntax), and in bytes.
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    memory_limit_bytes: int = 3 * 10**9
    # The whole run's budget when this process is one of N step processes (`lowincome run --workers N`).
    run_memory_limit_bytes: int | None = None
    # Group given read access to restricted files (None: owner only). Checked to exist at load.
    restricted_group: str | None = None
    # The inbox sensor waits until a file has not changed for this long before asking for a run.
    settle_seconds: int = DEFAULT_SETTLE_SECONDS
    # Per-night artifacts (run folders of older as-of days, analysts' parts no newer publication uses) are
    # kept this many days; the delivery store, the audit history and the flag history are kept for good.
    retention_days: int = DEFAULT_RETENTION_DAYS
    # The volume check judges a delivery's row count against the previous one only from this size up.
    volume_min_rows: int = DEFAULT_VOLUME_MIN_ROWS
    # Below this many bytes of files to read, a feed is one ingestion step for all its counties.
    fanout_min_bytes: int = DEFAULT_FANOUT_MIN_MB * 10**6
    # The rules are this many steps over groups of counties (1: one step, no routing).
    rule_steps: int = DEFAULT_RULE_STEPS
    # The Celery broker's URL (redis://, rediss://, amqp://, pyamqp://), for the Celery executor and its workers.
    celery_broker: str | None = None

    @property
    def key_is_development_default(self) -> bool:
        return self.pseudonym_key == DEV_PSEUDONYM_KEY

    @property
    def temp_directory(self) -> Path:
        """Where DuckDB spills when a query exceeds its memory: working storage, inside the warehouse
        (a folder per process and connection under it: lowincome/spill.py)."""
        return self.warehouse / "work" / SPILL_DIR


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read LOWINCOME_* variables; refuse unknown or malformed values, and a production start without a real key."""
    env = os.environ if env is None else env
    production = _environment(env) == "production"
    key = env.get("LOWINCOME_PSEUDONYM_KEY", "").strip()
    if production and (not key or key == DEV_PSEUDONYM_KEY):
        raise ConfigError(
            "LOWINCOME_ENV=production but LOWINCOME_PSEUDONYM_KEY is not set to a real secret: "
            "refusing to start (set a secret of at least 32 characters)."
        )
    if production and len(key) < 32:
        raise ConfigError("LOWINCOME_PSEUDONYM_KEY is shorter than 32 characters: refusing to start in production.")
    if production:
        for name in ("LOWINCOME_INBOX", "LOWINCOME_WAREHOUSE"):
            if not env.get(name, "").strip():
                raise ConfigError(
                    f"LOWINCOME_ENV=production but {name} is not set: refusing to start "
                    "(production never falls back to the bundled samples or a folder relative to the current directory)."
                )
    memory_text, memory_bytes = _memory_limit(env)
    return Settings(
        blocking_share=_blocking_share(env),
        inbox=_env_path_from(env, "LOWINCOME_INBOX", DEFAULT_INBOX),
        warehouse=_env_path_from(env, "LOWINCOME_WAREHOUSE", DEFAULT_WAREHOUSE),
        policy=_env_path_from(env, "LOWINCOME_POLICY", DEFAULT_POLICY),
        pseudonym_key=key or DEV_PSEUDONYM_KEY,
        production=production,
        memory_limit=memory_text,
        memory_limit_bytes=memory_bytes,
        run_memory_limit_bytes=_run_memory_limit(env),
        restricted_group=_restricted_group(env),
        settle_seconds=_settle_seconds(env),
        retention_days=_retention_days(env),
        volume_min_rows=_volume_min_rows(env),
        fanout_min_bytes=_fanout_min_mb(env) * 10**6,
        rule_steps=_whole_number(env, "LOWINCOME_RULE_STEPS", DEFAULT_RULE_STEPS, "steps", 4, least=1),
        celery_broker=_celery_broker(env),
    )


def _environment(env) -> str:
    raw = env.get("LOWINCOME_ENV", "")
    value = raw.strip().lower() or "development"
    if value not in ENVIRONMENTS:
        raise ConfigError(f"LOWINCOME_ENV must be one of {', '.join(ENVIRONMENTS)}, got '{raw.strip()}': refusing to start.")
    return value


def _blocking_share(env) -> float:
    raw = env.get("LOWINCOME_BLOCKING_SHARE", "").strip() or "0.05"
    try:
        share = float(raw)
    except ValueError:
        share = math.nan
    if not (math.isfinite(share) and 0.0 <= share <= 1.0):
        raise ConfigError(f"LOWINCOME_BLOCKING_SHARE must be a share between 0 and 1 (e.g. 0.05), got '{raw}'")
    return share


def parse_size(text: str) -> int:
    """Bytes of a size in DuckDB's syntax (`4GB`, `1.5GB`, `512MB`, `2GiB`); ValueError otherwise."""
    match = _SIZE.match(text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(text)
    value = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if not math.isfinite(value):
        raise ValueError(text)
    return int(value)


def _memory_limit(env, name: str = "LOWINCOME_MEMORY_LIMIT") -> tuple[str, int]:
    raw = env.get(name, "").strip() or DEFAULT_MEMORY_LIMIT
    try:
        size = parse_size(raw)
    except ValueError:
        raise ConfigError(
            f"{name} must be a size such as 4GB, 1.5GB or 512MB "
            f"(units {', '.join(u.upper().replace('I', 'i') for u in _SIZE_UNITS)}), got '{raw}'"
        ) from None
    if size < MIN_MEMORY_BYTES:
        raise ConfigError(f"{name} must be at least 128MB, got '{raw}'")
    return raw.replace(" ", ""), size


def _run_memory_limit(env) -> int | None:
    if not env.get("LOWINCOME_RUN_MEMORY_LIMIT", "").strip():
        return None
    return _memory_limit(env, "LOWINCOME_RUN_MEMORY_LIMIT")[1]


def running_alone(settings: Settings) -> Settings:
    """The settings of a step that no other step of its run can run beside: the publishing step.

    `lowincome run --workers N` gives each step process 1/N of the run's budget, because N of them may
    run at once. The publishing step depends on every other step, so it always runs alone, and it is
    the step that needs the most at a city's size (a city measured with 1.5 of its 3 GB ran out of
    memory building the databases): it gets the whole run's budget back.
    """
    whole = settings.run_memory_limit_bytes
    if whole is None or whole <= settings.memory_limit_bytes:
        return settings
    return replace(settings, memory_limit=f"{whole // 10**6}MB", memory_limit_bytes=whole)


def _restricted_group(env) -> str | None:
    raw = env.get("LOWINCOME_RESTRICTED_GROUP", "").strip()
    if not raw:
        return None
    import grp

    try:
        grp.getgrnam(raw)
    except KeyError:
        raise ConfigError(f"LOWINCOME_RESTRICTED_GROUP names a group that does not exist on this machine: '{raw}'") from None
    return raw


def _whole_number(env, name: str, default: int, unit: str, digits: int, least: int = 0) -> int:
    """A LOWINCOME_* count (seconds, rows, megabytes, days): unset is the default; anything else must be digits."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not re.fullmatch(rf"\d{{1,{digits}}}", raw) or int(raw) < least:
        raise ConfigError(f"{name} must be a whole number of {unit}, {least} or more (e.g. {default}), got '{raw}'")
    return int(raw)


def _settle_seconds(env) -> int:
    return _whole_number(env, "LOWINCOME_SETTLE_SECONDS", DEFAULT_SETTLE_SECONDS, "seconds", 7)


def _volume_min_rows(env) -> int:
    return _whole_number(env, "LOWINCOME_VOLUME_MIN_ROWS", DEFAULT_VOLUME_MIN_ROWS, "rows", 9)


def _fanout_min_mb(env) -> int:
    return _whole_number(env, "LOWINCOME_FANOUT_MIN_MB", DEFAULT_FANOUT_MIN_MB, "megabytes", 7)


def _retention_days(env) -> int:
    return _whole_number(env, "LOWINCOME_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, "days", 5, least=1)


CELERY_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")


def _celery_broker(env) -> str | None:
    raw = env.get("LOWINCOME_CELERY_BROKER", "").strip()
    if not raw:
        return None
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in CELERY_SCHEMES or not rest:
        shown = raw if not sep else f"{scheme}://..."  # a URL may carry a password: never echo it whole
        raise ConfigError(f"LOWINCOME_CELERY_BROKER must be a broker URL starting {', '.join(s + '://' for s in CELERY_SCHEMES)} "
                          f"(e.g. redis://broker-host:6379/0), got '{shown}'")
    return raw


def _env_path_from(env, name: str, default: Path) -> Path:
    """The path, made absolute against the directory the command started in.

    The analysts' views in lowincome.duckdb name their Parquet parts by path; a relative warehouse
    (the default `warehouse/`) would give relative paths that only resolve from the directory the run
    started in, and an analyst opening the database from anywhere else would get "No files found".
    """
    value = env.get(name, "").strip()
    return (Path(value).expanduser() if value else default).absolute()


def configure_duckdb(con, settings: Settings, share: float = 0.6):
    """Bound a DuckDB connection to the run's memory budget and let it spill into working storage.

    DuckDB gets `share` of LOWINCOME_MEMORY_LIMIT: some of its operators allocate outside the
    buffer manager, and Polars and Python live in the same process (DuckDB's "Out-of-Memory
    Issues" guide: set the limit below the real budget). Spill files go under `<warehouse>/work/tmp`,
    owner-only, on the warehouse's disk rather than a small /tmp, in a folder of the connection's own
    (lowincome/spill.py: processes on several machines share that disk). Returns the connection.
    """
    from .spill import connection_folder

    limit_mb = max(64, int(settings.memory_limit_bytes * share) // 10**6)
    con.execute(f"SET memory_limit = '{limit_mb}MB'")
    con.execute("SET temp_directory = ?", [str(connection_folder(settings.temp_directory))])
    return con
