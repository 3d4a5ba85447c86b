"""The error a missing or wrong steward.yaml raises, wherever in the package it is found."""

from __future__ import annotations

from steward.errors import RequestError


class ConfigError(RequestError, ValueError):
    """steward.yaml is missing or wrong; the message names the file and the field."""
