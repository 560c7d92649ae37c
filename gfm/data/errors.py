"""The errors of stage 1: each message names the file or URL at fault, the problem, and what to do."""

from __future__ import annotations


class DataError(ValueError):
    """A dataset that cannot be used as it is; the message names the file and the problem."""


class DownloadError(DataError):
    """A download that failed (HTTP error, connection lost after every retry, deadline passed, Google
    Drive refusal)."""


class ChecksumError(DownloadError):
    """A downloaded file whose sha256 differs from the registry or the lock file."""


class ContentError(DataError):
    """Bytes that are not what they should be: an HTML page where an archive or a checkpoint was
    expected, another file type, a truncated or corrupt archive."""


class UnsafeArchiveError(DataError):
    """An archive member that would land outside the target folder, a device file, or a bomb."""
