"""One Monitor-EA session through nginx (wss, or ws via stunnel), for deploy/verify.sh.

usage: verify_wss.py URL API_KEY CA_FILE BRIDGE_PID

Sends hello, ping and one open event, printing each reply; then sends
SIGTERM to the bridge and prints the close code the drain delivers
("close 1001 ..."). Every receive has a 10 s timeout.
"""
import json
import os
import signal
import ssl
import sys
import time

import websocket

url, key, ca_file, bridge_pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tls = {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": ca_file, "server_hostname": "bridge.example.com"}
# Over wss the Host header names the site, as MT5 sends it; over plain ws
# (through stunnel) it is the local address, as MT4 sends it.
host = "bridge.example.com" if url.startswith("wss:") else None
connection = websocket.create_connection(url, sslopt=tls, host=host, timeout=10)
hello = {"t": "hello", "v": 1, "key": key, "login": 10000001, "role": "master", "platform": "mt5",
         "server": "Broker-Live", "ea": "verify/1", "last_seq": 0}
event = {"t": "event", "seq": 1, "kind": "open", "pos": 9001, "ticket": 9001, "symbol": "EURUSD",
         "side": "buy", "volume": 0.1, "price": 1.08, "sl": 0, "tp": 0, "magic": 0, "comment": "",
         "time_ms": int(time.time() * 1000)}
for message in (hello, {"t": "ping"}, event):
    connection.send(json.dumps(message))
    print(connection.recv())
os.kill(bridge_pid, signal.SIGTERM)
while True:
    opcode, frame = connection.recv_data_frame(True)
    if opcode == websocket.ABNF.OPCODE_CLOSE:
        print("close", int.from_bytes(frame.data[:2], "big"), frame.data[2:].decode())
        break
connection.close()
