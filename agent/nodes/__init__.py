"""Graph nodes: the triage pipeline, the chat loop, plan composition and verification, approval."""
