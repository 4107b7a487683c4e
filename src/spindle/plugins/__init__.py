"""Built-in plugins, registered through spindle's own entry points like any third party's."""
