#!/usr/bin/env python3
"""A faced client in Python, standard library only (urllib, json).

Creates a gallery, enrols a person from a photo, identifies a probe photo
in the gallery and verifies it against the person:

    FACED_TOKEN=<id>.<secret> python3 faced_client.py \
        --url http://127.0.0.1:8080 --gallery staff \
        --id angelina --name "Angelina Jolie" enrol.jpg probe.jpg

The token needs the write scope to enrol (a door controller that only
identifies holds a read key). Photos travel as base64 in JSON; multipart
and raw image/* bodies work too (see the README).
"""

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.request


class FacedError(Exception):
    """An API error: the problem+json code and detail."""

    def __init__(self, status, code, detail):
        super().__init__(f"HTTP {status} {code}: {detail}")
        self.status, self.code = status, code


def call(url, token, method, path, body=None):
    """Sends one JSON request and returns the decoded JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        try:
            problem = json.load(e)
        except ValueError:
            problem = {}
        raise FacedError(e.code, problem.get("code", ""), problem.get("detail", e.reason)) from None


def photo(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def best_match(answer):
    """The best match of the first (biggest) face, or None."""
    faces = answer.get("faces") or []
    if not faces or not faces[0].get("matches"):
        return None
    return faces[0]["matches"][0]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--gallery", default="staff")
    p.add_argument("--id", required=True, help="person id to enrol")
    p.add_argument("--name", default="")
    p.add_argument("enrol", help="photo to enrol the person from")
    p.add_argument("probe", help="photo to identify and verify")
    a = p.parse_args()
    token = os.environ.get("FACED_TOKEN")
    if not token:
        sys.exit("set FACED_TOKEN to an API key (faced keys add --scopes read,write)")

    try:
        call(a.url, token, "POST", "/v1/galleries", {"name": a.gallery})
        print(f"gallery {a.gallery}: created")
    except FacedError as e:
        if e.status != 409:  # 409: it exists already, which is fine
            raise
        print(f"gallery {a.gallery}: exists")

    person = call(a.url, token, "POST", "/v1/persons",
                  {"id": a.id, "name": a.name, "galleries": [a.gallery], "photos": [photo(a.enrol)]})
    print(f"enrolled {person['person']['id']}: {len(person['faces'])} face(s)")

    m = best_match(call(a.url, token, "POST", "/v1/identify", {"gallery": a.gallery, "photo": photo(a.probe)}))
    if m is None:
        print("identify: no match")
    else:
        print(f"identify: {m['person']['id']} confidence {m['confidence']:.2f}")

    v = call(a.url, token, "POST", "/v1/verify", {"person_id": a.id, "photo1": photo(a.probe)})
    verdict = "verified" if v.get("verified") else "not verified"
    print(f"verify {a.id}: {verdict} confidence {v['pairs'][0]['confidence']:.2f}")


if __name__ == "__main__":
    try:
        main()
    except (FacedError, OSError) as e:
        sys.exit(f"faced_client: {e}")
