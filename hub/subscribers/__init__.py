"""Topics, districts, subscriptions with their consent record, keyword commands and phone verification."""
