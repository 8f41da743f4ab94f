"""Helpers shared by the GUI tests (tests/test_gui_*.py)."""
