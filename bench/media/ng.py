#!/usr/bin/env python3
"""Minimal rtpengine ng-protocol client (bencode over UDP) for bench/media/compare.sh.

ng.py NG_ADDR PBX_PORT CARRIER_PORT
Sets up one call: offer from the PBX (plain RTP/AVP on PBX_PORT) asking rtpengine for
RTP/SAVP toward the carrier, answer from the carrier (RTP/SAVP on CARRIER_PORT with an SDES key
of its own). Prints "edge_a=IP:PORT edge_b=IP:PORT" (where the PBX and the carrier must send)."""
import base64, os, re, socket, sys

def benc(x):
    if isinstance(x, int): return b"i%de" % x
    if isinstance(x, str): x = x.encode()
    if isinstance(x, bytes): return b"%d:%s" % (len(x), x)
    if isinstance(x, list): return b"l" + b"".join(benc(i) for i in x) + b"e"
    if isinstance(x, dict):
        return b"d" + b"".join(benc(k) + benc(v) for k, v in sorted(x.items())) + b"e"
    raise TypeError(x)

def bdec(b, i=0):
    c = b[i:i+1]
    if c == b"i":
        j = b.index(b"e", i); return int(b[i+1:j]), j + 1
    if c in (b"l", b"d"):
        i += 1; out = [] 
        while b[i:i+1] != b"e":
            v, i = bdec(b, i); out.append(v)
        return (dict(zip(out[::2], out[1::2])) if c == b"d" else out), i + 1
    j = b.index(b":", i); n = int(b[i:j]); return b[j+1:j+1+n], j + 1 + n

def ng(addr, cmd):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
    cookie = os.urandom(4).hex().encode()
    s.sendto(cookie + b" " + benc(cmd), addr)
    data, _ = s.recvfrom(65535)
    d, _ = bdec(data[len(cookie) + 1:])
    if d.get(b"result") != b"ok": sys.exit("rtpengine: %r" % d)
    return d[b"sdp"].decode()

def port_of(sdp):
    ip = re.search(r"c=IN IP4 (\S+)", sdp).group(1)
    return "%s:%s" % (ip, re.search(r"m=audio (\d+)", sdp).group(1))

host, port = sys.argv[1].rsplit(":", 1); addr = (host, int(port))
pbx, carrier = sys.argv[2], sys.argv[3]
sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %s RTP/AVP 0\r\n" % pbx
offer = ng(addr, {"command": "offer", "call-id": "bench", "from-tag": "a", "sdp": sdp,
                  "transport-protocol": "RTP/SAVP", "ICE": "remove", "flags": ["trust-address"]})
tag = re.search(r"a=crypto:(\d+) AES_CM_128_HMAC_SHA1_80", offer).group(1)
key = base64.b64encode(os.urandom(30)).decode()
ans = ("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %s RTP/SAVP 0\r\n"
       "a=crypto:%s AES_CM_128_HMAC_SHA1_80 inline:%s\r\n") % (carrier, tag, key)
answer = ng(addr, {"command": "answer", "call-id": "bench", "from-tag": "a", "to-tag": "b", "sdp": ans,
                   "transport-protocol": "RTP/AVP", "ICE": "remove", "flags": ["trust-address"]})
print("edge_a=%s edge_b=%s" % (port_of(answer), port_of(offer)))
