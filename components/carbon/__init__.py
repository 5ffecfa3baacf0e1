"""Carbon: energy measured around every stage, and the run's carbon impact statement."""
