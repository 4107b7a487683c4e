"""Built-in middleware."""
