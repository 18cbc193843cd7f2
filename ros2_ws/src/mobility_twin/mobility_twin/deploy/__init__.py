"""Deployment helpers: the launch file of a whole stack for a scenario."""
