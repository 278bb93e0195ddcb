"""feedback room."""
