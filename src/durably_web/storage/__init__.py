"""Storage: the Store (domain operations, all SQL) over a Connection (one per driver)."""
