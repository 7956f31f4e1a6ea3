# A stub Understory for benches/python/memory.sh: a token endpoint, EXPERIENCES experiences, and
# for each a list of ticket variants and one of information requests: first SMALLS pages of one
# tiny item (default 0), then PAGES pages of about PAGE_MB MB each (100 items of one long name),
# each item its own row. The tiny pages first are what a budget that reserved a "typical" body
# per request would learn from, letting max_concurrent big bodies past its ceiling.
#
#   python3 benches/python/big_lists.py PORT EXPERIENCES PAGES PAGE_MB [SMALLS]
import json, sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from urllib.parse import urlparse, parse_qs
port, n, pages, page_mb = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
smalls = int(sys.argv[5]) if len(sys.argv) > 5 else 0
PER = 100
fill = "x" * int(page_mb * 1e6 / PER)
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
            nxt = f',"next":"p{page+1}"' if page + 1 < smalls + pages else ""
            if page < smalls:
                return self.send('{"items":[{"id":"s-%s-%d"}]%s}' % (eid, page, nxt))
            items = ",".join(f'{{"id":"v-{eid}-{page}-{k}","name":"{fill}"}}' for k in range(PER))
            return self.send('{"items":[' + items + "]" + nxt + "}")
        self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers()
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
