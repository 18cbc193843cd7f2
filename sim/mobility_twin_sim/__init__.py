"""The CARLA-free simulator: T-Drive trajectories replayed as a city, synthetic LiDAR, odometry, a clock."""
