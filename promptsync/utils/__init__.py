"""Small helpers shared across the package (logging, seeding, config, files)."""
