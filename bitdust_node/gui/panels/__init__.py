"""The parts of a page that update live: each renders from endpoint answers to an escaped HTML fragment."""
