"""The locust driver's report plugin, alone in its folder.

locust puts the folder of every ``-f`` file on ``sys.path``; this folder holds nothing but the
plugin, so no module of the harness (``harness/drivers/locust.py`` above all) can shadow the
real ``locust`` package inside a locust process. Never import the plugin itself: importing
locust monkey-patches the importing process with gevent.
"""
