"""Topics, districts, subscriptions with their consent record, phone verification and GDPR."""
