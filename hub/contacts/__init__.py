"""Citizens and their identities on each channel."""
