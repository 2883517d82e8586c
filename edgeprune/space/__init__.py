"""Search space (space stage): genes and genomes over an analysed network."""

from edgeprune.space.genome import Gene, SearchSpace, channel_levels

__all__ = ["Gene", "SearchSpace", "channel_levels"]
