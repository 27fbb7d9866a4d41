"""BIG-Bench Hard as envs: `bbh` (all 27 tasks) and `bbh/<task>`, registered as strings (nothing imported)."""

from __future__ import annotations

from reasongym.registry import register

TASKS = (
    "boolean_expressions", "causal_judgement", "date_understanding", "disambiguation_qa", "dyck_languages",
    "formal_fallacies", "geometric_shapes", "hyperbaton", "logical_deduction_five_objects",
    "logical_deduction_seven_objects", "logical_deduction_three_objects", "movie_recommendation",
    "multistep_arithmetic_two", "navigate", "object_counting", "penguins_in_a_table",
    "reasoning_about_colored_objects", "ruin_names", "salient_translation_error_detection", "snarks",
    "sports_understanding", "temporal_sequences", "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects", "tracking_shuffled_objects_three_objects", "web_of_lies",
    "word_sorting",
)


def register_bbh_envs() -> None:
    register("bbh", "envs.bbh.env:BBHEnv", description="BIG-Bench Hard, 27 tasks, exact match (lukaemon/bbh)")
    for task in TASKS:
        register(f"bbh/{task}", "envs.bbh.env:BBHEnv", description=f"BIG-Bench Hard {task}", family="bbh", task=task)
