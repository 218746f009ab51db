"""What a run leaves: the RunResult schema, its atomic storage, the history and the environment."""
