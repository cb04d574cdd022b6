"""Municipalities (tenants), staff users, teams, API tokens and channel accounts."""
