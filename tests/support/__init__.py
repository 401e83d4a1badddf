"""Shared test helpers: trained runs, model files, synthetic Qt events (tests/ is on sys.path)."""
