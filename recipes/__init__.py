"""Shipped YAML recipes (found with importlib.resources: trainers/common/recipes.py)."""
