"""The SQuAD task, pure: data (synthetic generator, official files, hub), features, the model and
tokenizer, answers from logits, and the official EM/F1 scores. No stage above is imported here."""
