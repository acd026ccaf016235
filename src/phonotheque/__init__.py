"""Phonothèque: build publicly distributable music preservation archives."""

__version__ = "0.1.0"
