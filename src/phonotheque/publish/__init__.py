"""Publish and verify: metadata databases, torrents index, release waves."""
