"""Conversations, messages, the inbound pipeline and outbound replies."""
