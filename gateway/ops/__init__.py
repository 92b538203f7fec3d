"""What operators look at: the admin endpoint (``/status``, ``/healthz``, ``/metrics``), the
Prometheus metrics, and the status table."""
