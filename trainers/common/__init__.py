"""Plumbing every trainer entry point shares: the CLI parser, model loading and saving, SFT, progress."""
