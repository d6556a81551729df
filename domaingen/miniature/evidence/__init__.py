"""The miniature world's evidence: each paper's claim on synthetic data, with seeds."""
