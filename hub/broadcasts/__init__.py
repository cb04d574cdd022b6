"""Announcements, warnings, surveys and invitations: drafting, approval, fan-out and reports."""
