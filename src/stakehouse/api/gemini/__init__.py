"""The Gemini staking REST adapter (``/v1``): see ``app.py`` for the request pipeline."""
