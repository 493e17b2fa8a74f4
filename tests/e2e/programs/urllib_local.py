"""A task that fetches a page with urllib from a local HTTP server that answers in 60 ms.

The server runs in a thread of this process started before the loop. urlopen on a numeric
address resolves nothing; the connect is quick; the wait for the answer is the block.
"""
import asyncio
import http.server
import threading
import time
import urllib.request

from _scenario import run


class SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.06)
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
PORT = server.server_address[1]
threading.Thread(target=server.serve_forever, daemon=True).start()


async def fetcher():
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/") as page:  # MARK: urlopen
        assert page.read() == b"hello\n"
    await asyncio.sleep(0)


async def one_round(n):
    await asyncio.create_task(fetcher(), name="the-fetcher")


run(one_round)
