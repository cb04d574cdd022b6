"""Municipalities (tenants) with their settings and office hours, staff, teams, API tokens and channel accounts."""
