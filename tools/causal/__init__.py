"""Causal models: the reviewed causal graph, effect estimation (DoWhy) and the fitted SCM."""
