"""Errors for expected user mistakes: the CLI prints them as one line, without a traceback."""

from __future__ import annotations


class A2BSError(Exception):
    """A problem with the user's input that they can fix; the message says what and how."""


class AudioError(A2BSError):
    """Audio that cannot be read or used."""


class CheckpointError(A2BSError):
    """A checkpoint that is missing, corrupt or does not match the model."""
