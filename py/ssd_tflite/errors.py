"""Every error type of the tools.

UserError and its kinds are reported to users: each names the file, field or
flag at fault. InternalError is a broken invariant of our own code, never the
user's doing. The rest are signals that one module raises and its caller turns
into a report.
"""


class UserError(Exception):
    """A user-facing failure: the message says what is wrong and where."""


class InputError(UserError):
    """A file given to a tool (image, model, labels) cannot be used."""


class ConfigError(UserError):
    """`pipeline.config` cannot be read, or asks for something we do not support."""


class CheckpointError(UserError):
    """The checkpoint does not hold the variables the config describes."""


class ConversionError(UserError):
    """The converter rejected the graph or the settings."""


class ReconstructionError(UserError):
    """The model and the config do not describe the same network."""


class InternalError(Exception):
    """An invariant of our own code does not hold: a bug to report, not a fault in the user's input."""


class OptionsError(Exception):
    """A detection operator's custom options are not a flexbuffer map."""


class ProtocolError(Exception):
    """The worker's input is not a sequence of length-prefixed messages: the next frame cannot be found."""
