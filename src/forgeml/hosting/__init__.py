"""Real-time endpoints: the host process, its router and fleets of model-server workers."""
