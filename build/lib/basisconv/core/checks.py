"""Validation helpers shared by the library and the pipeline (arXiv 2408.06024 replication).

Bad input fails before any compute, with a message that names the setting, the bad value and what is valid.
"""
from __future__ import annotations


def check_choice(value, choices, name: str):
    """``value`` if it is one of ``choices``; else ``ValueError('unknown <name> <value>; valid choices: ...')``."""
    if isinstance(value, (list, dict, set)) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid choices: {', '.join(map(str, choices))}")
    return value
