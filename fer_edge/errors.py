"""User-facing errors: the CLI prints them as one line and exits non-zero."""


class FerEdgeError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2


class DataError(FerEdgeError):
    """A dataset that cannot be read: unknown layout, malformed labels, missing files."""


class ModelError(FerEdgeError):
    """A model or bundle that cannot be used: wrong file, tampered artifact, unknown format."""


class BackendUnavailable(FerEdgeError):
    """An optional backend whose package is not installed; the message says what to install."""


class SourceError(FerEdgeError):
    """A camera, stream or file that cannot be opened or read."""
