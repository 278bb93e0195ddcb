"""instructions room."""
