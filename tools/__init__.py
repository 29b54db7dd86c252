"""Deterministic, typed last-mile analytics usable without any LLM.

``tools`` never imports ``agent``: the agent reaches analytics only through this package.
"""
