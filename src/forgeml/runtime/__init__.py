"""What runs inside a job: its folder, its channels, its process, its logs, metrics and artifacts."""
