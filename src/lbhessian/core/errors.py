"""The one exception type users see: the CLI prints its message as a single line and exits 2."""


class LbhError(Exception):
    """A user-facing error: bad config, missing or corrupt file, incompatible checkpoint."""
