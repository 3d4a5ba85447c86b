"""Test support: fake model, in-process workers, history recording."""
