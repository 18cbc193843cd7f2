"""Learning for the mobility twin: continual GNN relation models, offloading agents, twin placement."""
