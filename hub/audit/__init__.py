"""Who did what: one append-only record for approvals, sends, exports and erasures."""
