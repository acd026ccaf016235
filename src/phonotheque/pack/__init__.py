"""Packing: popularity bands, payload layout, torrents, album art."""
