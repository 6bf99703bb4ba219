"""The local HollaEx-compatible exchange now lives in the pip package (`octobot_signals.local_exchange`: the
demo runs it too); this name keeps `from local_exchange import ...` working in the tests."""
from octobot_signals.local_exchange import *  # noqa: F403
from octobot_signals.local_exchange import __all__  # noqa: F401
