"""The shared agent core: every agent builds on these modules."""
