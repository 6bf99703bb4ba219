"""`python -m octobot_signals.hub --host H --port P --data DIR [--public-url URL]`."""
import sys

from .cli import main

sys.exit(main())
