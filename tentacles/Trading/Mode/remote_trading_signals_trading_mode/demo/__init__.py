"""The demo: `octobot-signals demo` runs it (bench/ and chaos/ reuse its helpers); never run in a bot."""
