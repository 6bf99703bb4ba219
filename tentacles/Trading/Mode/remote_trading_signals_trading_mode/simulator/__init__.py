"""Offline simulator: replay, follow, demo, bench and tests run it; shipped for the tentacle's own tests/."""
