"""lowincome-monitor: dynamic low-income population monitoring (低收入人口动态监测)."""

__version__ = "0.1.0"
