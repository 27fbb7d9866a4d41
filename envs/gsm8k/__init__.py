"""GSM8K: grade-school math word problems with integer answers (openai/gsm8k)."""
