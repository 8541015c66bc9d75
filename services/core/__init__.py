"""Plumbing shared by every service: settings, logging, bus, database, event log, auth."""
