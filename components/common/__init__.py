"""Small helpers every stage shares: user-facing errors, content fingerprints, the offline text source."""
