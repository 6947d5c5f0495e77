"""The project's error hierarchy.

Raised at the edges (config load, seed parse, release write); the CLI turns any of
them into one red line and exit code 2. Messages say what went wrong, where, and
what to do, in that order.
"""

from __future__ import annotations


class PersonaFoundryError(Exception):
    """Base class of every error the CLI reports without a traceback."""


class ConfigError(PersonaFoundryError):
    """A config file or override is invalid."""


class SeedFileError(PersonaFoundryError):
    """A seed persona file is malformed (the message names file and line)."""


class ReplyError(PersonaFoundryError):
    """An LLM reply could not be parsed or validated."""


class ValidationFailed(PersonaFoundryError):
    """A table failed its schema or expectation suite; the release is refused."""


class ReleaseExistsError(PersonaFoundryError):
    """A release version already exists; releases are never overwritten."""


class ModelError(PersonaFoundryError):
    """The embedded model could not be installed, verified or started."""


class EndpointError(PersonaFoundryError):
    """An LLM endpoint stayed unreachable past the retry budget."""


class BudgetExceeded(PersonaFoundryError):
    """The run reached its token or cost cap; it stopped cleanly and can be resumed."""
