"""MMLU as envs: `mmlu` (all 57 subjects) and `mmlu/<subject>`, registered as strings (nothing imported)."""

from __future__ import annotations

from reasongym.registry import register

SUBJECTS = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge", "college_biology",
    "college_chemistry", "college_computer_science", "college_mathematics", "college_medicine", "college_physics",
    "computer_security", "conceptual_physics", "econometrics", "electrical_engineering", "elementary_mathematics",
    "formal_logic", "global_facts", "high_school_biology", "high_school_chemistry", "high_school_computer_science",
    "high_school_european_history", "high_school_geography", "high_school_government_and_politics",
    "high_school_macroeconomics", "high_school_mathematics", "high_school_microeconomics", "high_school_physics",
    "high_school_psychology", "high_school_statistics", "high_school_us_history", "high_school_world_history",
    "human_aging", "human_sexuality", "international_law", "jurisprudence", "logical_fallacies", "machine_learning",
    "management", "marketing", "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition",
    "philosophy", "prehistory", "professional_accounting", "professional_law", "professional_medicine",
    "professional_psychology", "public_relations", "security_studies", "sociology", "us_foreign_policy", "virology",
    "world_religions",
)


def register_mmlu_envs() -> None:
    register("mmlu", "envs.mmlu.env:MMLUEnv", description="MMLU, 57 subjects, four options (cais/mmlu)")
    for subject in SUBJECTS:
        register(f"mmlu/{subject}", "envs.mmlu.env:MMLUEnv", description=f"MMLU {subject}", family="mmlu",
                 subject=subject)
