"""qa-bench: a benchmark and regression suite for fine-tuning transformers on SQuAD-style QA."""

__version__ = "0.1.0"
