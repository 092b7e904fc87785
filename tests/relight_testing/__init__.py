"""Helpers shared by the tests (tiny models built on the fly). tests/ is on sys.path."""
