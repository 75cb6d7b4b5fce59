"""A Flask application on Werkzeug's own server, as an upstream that routes the way WSGI
stacks do: the request target is cut at `#` and `?`, and PATH_INFO is percent-decoded.
Routes: /acme, /acme/<path>, /datasets/acme/<path> (acme's content), anything else (public).

    python3 werkzeug_upstream.py PORT
"""
import logging
import sys

from flask import Flask, jsonify, request
from werkzeug.serving import run_simple

app = Flask(__name__)


def answer(route):
    return jsonify(server="werkzeug", route=route, user=request.headers.get("X-Forwarded-User"),
                   organization=request.headers.get("X-SSO-Organization"), path=request.path)


@app.route("/acme")
@app.route("/acme/")
@app.route("/acme/<path:rest>")
@app.route("/datasets/acme/<path:rest>")
def acme(rest=""):
    return answer("acme")


@app.route("/", defaults={"rest": ""})
@app.route("/<path:rest>")
def public(rest):
    return answer("public")


if __name__ == "__main__":
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    print(f"listening on {sys.argv[1]}", flush=True)
    run_simple("127.0.0.1", int(sys.argv[1]), app, threaded=True)
