"""Errors that end a file, a feed or a run with one sentence a data team can act on."""


class LowincomeError(Exception):
    """Base class: the message is shown to the user as is, so it must say what and where."""


class DeliveryError(LowincomeError):
    """A delivered file cannot be used as a whole (unreadable, wrong encoding, empty, bad name)."""


class ConfigError(LowincomeError):
    """A setting, environment variable or configuration file is missing or malformed."""


KEPT = "the last published databases are unchanged"


def os_reason(exc: OSError) -> str:
    """What an OS error means, in words a data team knows (the disk is full, permission denied, ...)."""
    import errno

    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.ENOENT: "no such file or folder",
        errno.EIO: "input/output error (failing disk or network share)",
    }
    return reasons.get(exc.errno, exc.strerror or type(exc).__name__)


def describe_os_error(exc: OSError, where, stage: str) -> str:
    """One sentence for the data team: which stage failed, what happened, where, and that the last publication is intact.

    `stage` is the user's name of the step ("ingestion", "rule evaluation", "publishing", ...), so that an
    error while reading the inbox is never reported as a publishing failure.
    """
    place = getattr(exc, "filename", None) or where
    return f"{stage} failed: {os_reason(exc)} at {place}; {KEPT}"
