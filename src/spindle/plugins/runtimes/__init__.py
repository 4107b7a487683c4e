"""Built-in runtimes."""
