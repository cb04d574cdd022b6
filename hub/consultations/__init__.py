"""Consultation hours: recurring series, their sessions and slots, and the citizens' bookings."""
