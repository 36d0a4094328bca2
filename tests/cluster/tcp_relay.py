"""``python tcp_relay.py HOST PORT``: join stdin/stdout to a TCP connection (an ssh ProxyCommand).

Ray's cluster launcher has no SSH-port setting; its ``auth.ssh_proxy_command`` does the job
(``nc %h 2222`` on a real network). The ``ray up`` test uses this instead of netcat so it needs no
extra system package. Exits when either side closes.
"""

from __future__ import annotations

import os
import socket
import sys
import threading


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    sock = socket.create_connection((host, port), timeout=30)
    sock.settimeout(None)
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()

    def upstream() -> None:  # stdin -> socket
        while data := os.read(stdin, 65536):
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, daemon=True).start()
    while data := sock.recv(65536):  # socket -> stdout
        view = memoryview(data)
        while view:
            view = view[os.write(stdout, view):]


if __name__ == "__main__":
    main()
