"""Connection adapters: one per SQLite driver. The engine core imports none of them."""
