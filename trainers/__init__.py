"""Bundled trainers: `python -m trainers.grpo | trainers.launch`."""
