"""The three model families we train on goodbooks, one module each, and the types they publish as."""
