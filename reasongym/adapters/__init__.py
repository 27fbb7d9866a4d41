"""Adapters that hand reasongym envs to training engines: TRL (trl.py) and verl (verl.py)."""
