"""Swarm health: scrape trackers for seeder counts, and pick torrents for volunteers to adopt.

Import the modules by name (``swarm.health``, ``swarm.adopt``...): this package re-exports
nothing, so ``phono adopt`` does not load the scrapers' HTTP client with ``swarm.adopt``.
"""
