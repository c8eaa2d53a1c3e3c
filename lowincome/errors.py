"""Errors that end a file, a feed or a run with one sentence a data team can act on."""


class LowincomeError(Exception):
    """Base class: the message is shown to the user as is, so it must say what and where."""


class DeliveryError(LowincomeError):
    """A delivered file cannot be used as a whole (unreadable, wrong encoding, empty, bad name)."""


class ConfigError(LowincomeError):
    """A setting, environment variable or configuration file is missing or malformed."""
