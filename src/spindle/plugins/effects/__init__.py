"""Built-in effects."""
