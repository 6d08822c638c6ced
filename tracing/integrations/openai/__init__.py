"""The openai client: instrument_openai (extra tracehouse[openai])."""
