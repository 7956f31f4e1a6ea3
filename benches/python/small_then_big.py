# A stub whose per-parent list pages are tiny SMALLS times, then one page of BIG_MB MB: a budget
# that reserved a "typical" body per request would learn the tiny ones and let max_concurrent
# bodies of api.max_response_bytes arrive past its ceiling (1,067 MiB peak, release build, before
# bodies were counted as they are read). memory.sh runs it:
#   python3 benches/python/small_then_big.py PORT EXPERIENCES BIG_MB SMALLS   (128 16.5 6)
import json, sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from urllib.parse import urlparse, parse_qs
port, n, big_mb, smalls = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
PER = 100
fill = "x" * int(big_mb * 1e6 / PER)
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def send(self, body):
        b = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send(json.dumps({"access_token": "t", "token_type": "bearer", "expires_in": 3600}))
    def do_GET(self):
        u = urlparse(self.path)
        parts = u.path.strip("/").split("/")
        if parts == ["v1", "experiences"]:
            return self.send(json.dumps({"items": [{"id": f"x-{i}"} for i in range(n)]}))
        if len(parts) == 4 and parts[3] in ("ticket-variants", "information-requests"):
            eid = parts[2]
            page = int(parse_qs(u.query).get("cursor", ["p0"])[0][1:])
            if page < smalls:
                return self.send('{"items":[{"id":"s-%s-%d"}],"next":"p%d"}' % (eid, page, page + 1))
            items = ",".join(f'{{"id":"v-{eid}-{page}-{k}","name":"{fill}"}}' for k in range(PER))
            return self.send('{"items":[' + items + "]}")
        self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers()
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
