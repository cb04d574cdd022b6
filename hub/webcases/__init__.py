"""Cases citizens open on the town's web forms, without a messenger: the way back to them, photos, the letter form."""
