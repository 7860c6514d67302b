"""Models: parameters and statistics as values, and the pure functions EM needs."""
