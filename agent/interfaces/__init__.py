"""The surfaces: thin adapters over the application service (web; the CLI is agent.cli)."""
