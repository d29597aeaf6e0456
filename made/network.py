"""Moved to :mod:`made.model.network`; kept so 0.2 code works."""

from .model.network import BLOCK_TYPES, Group, Link, Masks, Network, build_network, register_block

__all__ = ["Link", "Group", "Network", "Masks", "build_network", "register_block", "BLOCK_TYPES"]
