"""Small helpers shared by every stage: progress reporting and logging set-up."""
