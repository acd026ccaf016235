"""Serve the published metadata: web page, JSON API (`app`), and the seeder (`seeder`)."""
