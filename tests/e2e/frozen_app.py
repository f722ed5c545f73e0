"""A WSGI app for test_gunicorn_hooks: answers its worker's count of frozen objects."""

import gc


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(gc.get_freeze_count()).encode()]
