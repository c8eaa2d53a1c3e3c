"""Settings from the environment, each with a default that works from a fresh clone.

outputs.md fixes the variable names; this is the one place that reads them so
the CLI, the Dagster resources and the tests agree on defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INBOX = REPO_ROOT / "data_samples" / "inbox"
DEFAULT_WAREHOUSE = Path("warehouse")
DEFAULT_POLICY = Path(__file__).resolve().parent / "policy" / "default.yaml"
# Clearly marked: usable for samples and tests only. Production mode refuses it.
DEV_PSEUDONYM_KEY = "DEVELOPMENT-ONLY-pseudonym-key-do-not-use-in-production"


@dataclass(frozen=True)
class Settings:
    inbox: Path
    warehouse: Path
    policy: Path
    pseudonym_key: str
    production: bool
    # Share of invalid rows above which a whole delivery is held back (issue: blocking deliveries).
    blocking_share: float = 0.05

    @property
    def key_is_development_default(self) -> bool:
        return self.pseudonym_key == DEV_PSEUDONYM_KEY


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read LOWINCOME_* variables; refuse a production start without a real key."""
    env = os.environ if env is None else env
    production = env.get("LOWINCOME_ENV", "development").strip().lower() == "production"
    key = env.get("LOWINCOME_PSEUDONYM_KEY", "").strip()
    if production and (not key or key == DEV_PSEUDONYM_KEY):
        raise ConfigError(
            "LOWINCOME_ENV=production but LOWINCOME_PSEUDONYM_KEY is not set to a real secret: "
            "refusing to start (set a secret of at least 32 characters)."
        )
    if production and len(key) < 32:
        raise ConfigError("LOWINCOME_PSEUDONYM_KEY is shorter than 32 characters: refusing to start in production.")
    raw_share = env.get("LOWINCOME_BLOCKING_SHARE", "").strip() or "0.05"
    try:
        blocking_share = float(raw_share)
    except ValueError:
        blocking_share = -1.0
    if not 0.0 <= blocking_share <= 1.0:
        raise ConfigError(f"LOWINCOME_BLOCKING_SHARE must be a share between 0 and 1 (e.g. 0.05), got '{raw_share}'")
    return Settings(
        blocking_share=blocking_share,
        inbox=_env_path_from(env, "LOWINCOME_INBOX", DEFAULT_INBOX),
        warehouse=_env_path_from(env, "LOWINCOME_WAREHOUSE", DEFAULT_WAREHOUSE),
        policy=_env_path_from(env, "LOWINCOME_POLICY", DEFAULT_POLICY),
        pseudonym_key=key or DEV_PSEUDONYM_KEY,
        production=production,
    )


def _env_path_from(env, name: str, default: Path) -> Path:
    value = env.get(name, "").strip()
    return Path(value).expanduser() if value else default
