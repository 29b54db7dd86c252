"""What every tool call shares: its context (data backend, evidence), its errors, its evidence."""
