"""Programs recorded by tests/test_corpus.py (a package, so its conftest.py is corpus.conftest)."""
