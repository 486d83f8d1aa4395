"""Fuzzing what fanwatch reads from outside: one home for the strategies and the harness that the
suite (``tests/*/test_fuzz_*.py``, a few hundred examples per target) and ``bench/fuzz.py`` (tens of
thousands) share. Needs Hypothesis (the ``dev`` extra); nothing at run time imports it."""

__all__: list[str] = []  # strategies and harness are imported by module
