"""Benchmarks, run by hand from the repository root (never by the tests), each in either form:

    uv run python bench/<name>.py [options]
    uv run python -m bench.<name> [options]

webhook (photo intake through the webhook), review_queue (the moderation queue), admin (admin pages
and exports), daily (the daily jobs), outbox (the message sender), dataset (the bulk loader used by
review_queue). Every bench prints the load average and CPU time per operation of the app and of
PostgreSQL beside its wall-clock figures (`bench._common.CpuMeter`); `--help` lists the options.
"""
