"""Bad input, refused before any work with one message naming the parameter, its value and the valid range."""


class ParameterError(ValueError):
    """One or more parameter values are invalid; the message names each one."""
