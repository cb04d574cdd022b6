"""Official warnings in (the federal warning API, relayed to subscribers) and CAP 1.2 out (each warning sent)."""
