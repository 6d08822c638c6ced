"""Integrations with LLM libraries and frameworks: one subpackage or module each, one extra each."""
