"""The demo: a scripted leader strategy and the whole loop run offline."""
