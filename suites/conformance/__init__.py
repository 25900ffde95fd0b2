"""HTTP/1.1 conformance suite: data-driven raw-socket cases (cases.py), judged by runner.py."""
