"""The surfaces: thin adapters over the application service (the CLI, the web app)."""
