"""Stakehouse: a self-hostable Earn & Broker backend speaking the OKX v5 and Gemini REST APIs."""

__version__ = "0.1.0"
