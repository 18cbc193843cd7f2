"""Seeing the twin: rviz markers (the twin_viz node) and PNG snapshots for people without rviz."""
