"""The Slack bot, its Block Kit and the morning digest poster."""
