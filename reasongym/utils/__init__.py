"""Helpers that sit beside the core API."""

from reasongym.utils.env_checker import EnvCheckError, check_env

__all__ = ["EnvCheckError", "check_env"]
