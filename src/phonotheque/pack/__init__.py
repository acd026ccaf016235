"""Packing: popularity bands, payload layout, per-folder torrents (via phonotheque.torrent), album art."""
