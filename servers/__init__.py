"""mpm-harness servers: Python implementations of httpd's prefork, worker and event MPMs behind one launcher.

Nothing in this package imports from ``harness`` or ``suites``.
"""
