"""The corpus programs are recorded by tests/test_corpus.py; pytest must not collect them itself."""

collect_ignore_glob = ["*"]
