"""Open311 GeoReport v2: other apps list the town's problem categories, file problem reports and follow them."""
