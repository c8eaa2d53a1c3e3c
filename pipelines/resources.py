"""Resources: where the inbox, warehouse and policy are, resolved from the environment.

Fields left empty fall back to the LOWINCOME_* environment variables (and
their defaults), read when an asset runs. The pseudonym secret is never a
field: it comes from the environment only, so it never shows in run config.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource

from lowincome.config import Settings, load_settings
from lowincome.workstore import WorkStore


class LowincomeResource(ConfigurableResource):
    """Paths of one deployment; empty means: use LOWINCOME_INBOX / LOWINCOME_WAREHOUSE / LOWINCOME_POLICY."""

    inbox: str = ""
    warehouse: str = ""
    policy: str = ""

    def settings(self) -> Settings:
        env = dict(os.environ)
        for field, var in (("inbox", "LOWINCOME_INBOX"), ("warehouse", "LOWINCOME_WAREHOUSE"), ("policy", "LOWINCOME_POLICY")):
            value = getattr(self, field)
            if value:
                env[var] = value
        return load_settings(env)

    def store(self) -> WorkStore:
        return WorkStore(Path(self.settings().warehouse))
