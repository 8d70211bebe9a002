"""The errors the tools report to users: each names the file, field or variable at fault."""


class UserError(Exception):
    """A user-facing failure: the message says what is wrong and where."""


class InputError(UserError):
    """A file given to a tool (image, model, labels) cannot be used."""


class ConfigError(UserError):
    """`pipeline.config` cannot be read, or asks for something we do not support."""


class CheckpointError(UserError):
    """The checkpoint does not hold the variables the config describes."""
