"""Test-only tentacle: lets OctoBot's backtesting pick an importer for our synthetic data files."""
from .synthetic_history_collector import SyntheticHistoryCollector

__all__ = ["SyntheticHistoryCollector"]
