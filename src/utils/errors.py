"""User-facing errors: raised for bad input or config, printed as one line by the entry points."""


class DebandError(Exception):
    """Base class for errors that should reach the user as a single clear line, not a traceback."""


class ConfigError(DebandError, ValueError):
    """A config value is invalid (e.g. ``indi.steps=0``, ``bits=0``, an unknown loss)."""


class DataError(DebandError):
    """Input data is missing, empty, unreadable or malformed."""
