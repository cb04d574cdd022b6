"""Provider adapters: one module per channel kind, all speaking the Protocol in base.py."""
