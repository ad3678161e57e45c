"""Using a finished run: `predict` (texts, files, GLUE test splits), `submission` (the
leaderboard's files) and `export` (a transformers model, a peft adapter or an `adapters`
adapter folder that other tools load)."""


class PredictError(ValueError):
    """Texts or options that cannot be predicted (a pair task given one text, an empty text, a
    test split of another task); the message says what is expected."""


class ExportError(ValueError):
    """A run that cannot be exported where asked (the target exists); nothing is written."""
