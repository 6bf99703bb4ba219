"""The 'octobot-signals' hub account card of OctoBot's web UI (a Services tentacle).

Shipped by `octobot-signals package` as reference_tentacles/Services/Services_bases/octobot_signals_service/;
only OctoBot imports it (it needs octobot_services, which this project's own venv does not have).
"""
from .octobot_signals_service import OctoBotSignalsService

__all__ = ["OctoBotSignalsService"]
