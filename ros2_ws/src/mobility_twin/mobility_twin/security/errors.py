"""Errors of the security tools: raised at the boundary, naming the option, file or value that is wrong."""


class SecurityError(ValueError):
    """A bad input to ``mtwin security`` (host name, peer address, CA folder...) or an unusable file."""
