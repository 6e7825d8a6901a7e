"""Stage-3 configurators: what a configuration Job runs (`syringe configure`), one module per type."""
