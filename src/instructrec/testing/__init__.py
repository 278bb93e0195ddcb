"""Reusable contract test suites that ship with the package (lkpy style): a new Retriever or
Scorer opts in by subclassing the suite in its own test module."""
