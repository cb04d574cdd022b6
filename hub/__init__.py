"""Rathaus Hub: one inbox and one broadcast desk for every channel a town hall answers on."""
