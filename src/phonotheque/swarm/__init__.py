"""Swarm health: scrape trackers for seeder counts, and pick torrents for volunteers to adopt."""

from phonotheque.swarm.health import HealthOptions, HealthReport, TrackerResult, check
from phonotheque.swarm.scrape import Counts, ScrapeError, ScrapeOptions

__all__ = [
    "Counts", "HealthOptions", "HealthReport", "ScrapeError", "ScrapeOptions", "TrackerResult",
    "check",
]  # fmt: skip
