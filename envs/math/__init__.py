"""Competition math (MATH): math-750 (X-R1's training set) and math-500 (evaluation), scored with math-verify."""
