/**
 * Python (ssl) for the Worker tests: `visit(session)` connects to `port` with `ctx`, offering
 * `session` (None for a full handshake), logs in as alice and asks ID; it returns the Worker
 * that served (`x-postern-worker`), whether the session was resumed, and the session to offer
 * next. The script that includes it imports json, re, socket, ssl and sys and sets `port` and
 * `ctx`.
 */
export const PY_VISIT = `
def visit(session):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                        server_hostname="localhost", session=session)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a LOGIN alice pw\\r\\nb ID NIL\\r\\n")
    worker = None
    while True:
        line = f.readline().decode()
        m = re.search(r'"x-postern-worker" "(\\d+)"', line)
        if m: worker = m.group(1)
        if line.startswith("b "): break
    s.sendall(b"c LOGOUT\\r\\n")
    f.read()
    reused, session = s.session_reused, s.session
    s.close()
    return worker, reused, session
`;
