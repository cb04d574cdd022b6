"""The Mängelmelder: problems reported with a place, a category and photos, built on the inbox's conversations."""
