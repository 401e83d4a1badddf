"""Dialogs opened from the pages and menus."""
