"""Benchmarks: `octobot-signals bench` runs them (docs/benchmarks.md); nothing here runs in a bot."""
