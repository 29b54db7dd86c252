"""The web chat and its JSON + Server-Sent-Events API (``lastmile serve``)."""
