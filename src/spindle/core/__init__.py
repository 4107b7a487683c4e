"""spindle's kernel: models, registry, hooks, middleware, engine. No integrations here."""
