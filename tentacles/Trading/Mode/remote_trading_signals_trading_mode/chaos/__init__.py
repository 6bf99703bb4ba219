"""The chaos run: `octobot-signals chaos` runs it (docs/chaos-run.md); nothing here runs in a bot."""
