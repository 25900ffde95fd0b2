"""Reference servers (Apache httpd, gunicorn) behind the same launcher interface (issue: reference servers)."""
