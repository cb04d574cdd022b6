"""Citizens and their identities on each channel; merge, DSGVO export and erasure over every domain's rows."""
