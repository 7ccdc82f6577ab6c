"""Appends messages to a Dovecot IMAP server and dumps raw FETCH responses as JSON.

Input (stdin): {"port": N, "cafile": path, "messages": [{"file": path, "sections": ["1", "1.2", ...],
"specs": ["HEADER", "2.TEXT", ...]}]}
Output (stdout): [{"main": b64, "sections": {sec: {"mime": b64|null, "body": b64|null,
"binsize": b64|null, "binary": b64|null}}, "specs": {spec: b64|null}}] where each value is the raw untagged FETCH response.
"""
import base64
import imaplib
import json
import ssl
import sys


def raw(data):
    out = b""
    for item in data:
        if isinstance(item, tuple):
            out += item[0] + b"\r\n" + item[1]
        elif isinstance(item, bytes):
            out += item
    return base64.b64encode(out).decode()


def fetch(c, n, items):
    c.untagged_responses.clear()
    try:
        typ, data = c.fetch(str(n), items)
    except imaplib.IMAP4.error:
        return None
    if typ != "OK" or not data or data[0] is None:
        return None
    return raw(data)


def main():
    req = json.load(sys.stdin)
    context = ssl.create_default_context(cafile=req["cafile"])
    c = imaplib.IMAP4_SSL("127.0.0.1", req["port"], ssl_context=context)
    c.login("u", "pass")
    c.create("diff")
    for m in req["messages"]:
        with open(m["file"], "rb") as f:
            typ, _ = c.append("diff", None, None, f.read())
            if typ != "OK":
                raise SystemExit("append failed for " + m["file"])
    c.select("diff", readonly=True)
    out = []
    for i, m in enumerate(req["messages"], start=1):
        entry = {"main": fetch(c, i, "(ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE)"), "sections": {}}
        for sec in m["sections"]:
            entry["sections"][sec] = {
                "mime": fetch(c, i, "(BODY.PEEK[%s.MIME])" % sec),
                "body": fetch(c, i, "(BODY.PEEK[%s])" % sec),
                "binsize": fetch(c, i, "(BINARY.SIZE[%s])" % sec),
                "binary": fetch(c, i, "(BINARY.PEEK[%s])" % sec),
            }
        entry["specs"] = {}
        for spec in m.get("specs", []):
            entry["specs"][spec] = fetch(c, i, "(BODY.PEEK[%s])" % spec)
        out.append(entry)
    c.logout()
    json.dump(out, sys.stdout)


main()
