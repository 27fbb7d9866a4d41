"""Pieces of a single command: the offline main job and curriculum stream (grpo), the reward model (grpo),
PPO's math (ppo), before/after comparison (evaluate)."""
