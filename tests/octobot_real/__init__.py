"""Test support for driving the real OctoBot 2.1.1 (see support.py)."""
