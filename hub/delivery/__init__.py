"""The one path out: every message the hub sends is rate-limited, sent and classified here, by its delivery class."""
