"""Making completions: HF generate (and its compiled decode), vLLM engines and servers, OpenAI-compatible servers."""
