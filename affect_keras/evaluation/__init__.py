"""Scoring a trained model: metrics, the report, its pictures, and run comparisons."""
