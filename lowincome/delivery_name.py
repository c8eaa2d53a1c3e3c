"""The delivery file-name convention, `<feed>_<county6>_<YYYYMMDD>.<ext>`, in one place.

Read by the inbox scan (`delivery`) and by acceptances of held-back files (`acceptance`, which stays
free of Polars so that `lowincome accept` starts quickly). ASCII digits only: `\\d` is Unicode-aware,
so an Arabic-Indic date would match, and `int()` would read it.
"""

from __future__ import annotations

import re

DELIVERY_NAME = re.compile(r"^(?P<feed>[a-z_]+)_(?P<county>[0-9]{6})_(?P<date>[0-9]{8})\.(?P<ext>[A-Za-z]+)$")
