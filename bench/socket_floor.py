"""Floor for the Socket Mode ack benchmark: the least a client can do — open the connection
(apps.connections.open, then a TLS WebSocket handshake), and answer each envelope with its
ack at once, doing nothing else. Python stdlib only; the emulator measures it exactly as it
measures the listener. Runs until SIGTERM.

usage: python3 socket_floor.py URL CA_FILE APP_TOKEN
"""
import base64, json, os, signal, socket, ssl, struct, sys, urllib.parse, urllib.request

url, ca, token = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=ca)
req = urllib.request.Request(url + "/api/apps.connections.open", data=b"", method="POST",
                             headers={"Authorization": "Bearer " + token})
ws = urllib.parse.urlparse(json.loads(urllib.request.urlopen(req, context=ctx).read())["url"])
sock = ctx.wrap_socket(socket.create_connection((ws.hostname, ws.port)), server_hostname=ws.hostname)
key = base64.b64encode(os.urandom(16)).decode()
sock.sendall(("GET %s?%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
              % (ws.path, ws.query, ws.hostname, ws.port, key)).encode())
buf = b""
while b"\r\n\r\n" not in buf:
    buf += sock.recv(4096)
buf = buf.split(b"\r\n\r\n", 1)[1]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

def read(n):
    global buf
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit(0)
        buf += chunk
    out, buf = buf[:n], buf[n:]
    return out

def send_text(text):
    data, mask = text.encode(), os.urandom(4)
    head = bytes([0x81]) + (bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0xFE]) + struct.pack(">H", len(data)))
    sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

while True:
    b0, b1 = read(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack(">H", read(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", read(8))[0]
    payload = read(n)
    if b0 & 0x0F == 1:
        envelope = json.loads(payload)
        if "envelope_id" in envelope:
            send_text(json.dumps({"envelope_id": envelope["envelope_id"]}))
    elif b0 & 0x0F == 8:
        sys.exit(0)
