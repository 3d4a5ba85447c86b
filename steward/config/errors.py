"""The error a missing or wrong steward.yaml raises, wherever in the package it is found."""

from __future__ import annotations


class ConfigError(ValueError):
    """steward.yaml is missing or wrong; the message names the file and the field."""
