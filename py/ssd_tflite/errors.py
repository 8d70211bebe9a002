"""The errors the export reports to users: each names the file, field or variable at fault."""


class ExportError(Exception):
    """A user-facing failure: the message says what is wrong and where."""


class ConfigError(ExportError):
    """`pipeline.config` cannot be read, or asks for something we do not support."""


class CheckpointError(ExportError):
    """The checkpoint does not hold the variables the config describes."""
