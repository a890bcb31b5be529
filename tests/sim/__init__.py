"""The deterministic simulation (issue 19, scope 6): a seeded generator of operations, an independent model."""
