"""LangChain: instrument_langchain (extra tracehouse[langchain])."""
