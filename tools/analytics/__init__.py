"""Pure analytics the tools share: panels, seasonal baselines, the anomaly detector, scopes."""
