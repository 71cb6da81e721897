"""Evaluation: pitch, timbre and distribution metrics, the classifiers they use, and plots."""
