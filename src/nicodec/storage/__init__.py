"""Storage: whole folders, sharded across machines."""
