"""Drop rehearsals: Locust crowds of humans and scalper bots against a real dropserver.

Commands (run from the repository root, with the project's venv):

- ``python -m loadtest.fairness --scenario NAME [--quick] --out report.json``: one scenario
  (``unprotected``, ``fcfs``, ``fair-start``, ``lottery``), a JSON report of who won, a table
  and a PNG chart of every report in the output directory.
- ``python -m loadtest.ci_check``: the quick ``unprotected`` and ``lottery`` scenarios with fixed
  seeds; exits non-zero when anything is oversold or the lottery looks unfair.
- ``python -m loadtest.throughput --processes 2 --out throughput.json``: a stepped purchase load
  in Locust's distributed mode; the peak purchase rate and p99 at which the server stays correct.

Layout: pure modules (``devices``, ``crowd``, ``scenarios``, ``plan``, ``report``, ``tally``)
hold the model and the math and import neither Locust nor gevent, so the unit tests and the
orchestrators stay free of gevent's monkey-patching. Only ``users``, ``locustfile`` and
``throughput_locustfile`` run inside the Locust subprocess.
"""
