"""Outside client of the chat-sys gRPC API (run by tests/external/grpc.sh).

Environment: GRPC_ADDR, WS_URL, TOKEN_A (alice, channel owner), TOKEN_B (bob, member),
TOKEN_C (carol, not a member), SERVICE_TOKEN (client_credentials), CONV_ID; PYTHONPATH holds
the stubs generated from proto/. Prints one line per check and `grpc: N passed, M failed`.
"""

import json
import os
import queue
import sys
import threading
import time
import traceback
import uuid

import grpc
import websocket
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from auth.v1 import auth_pb2, auth_pb2_grpc
from connection.v1 import connection_pb2, connection_pb2_grpc
from message.v1 import message_pb2, message_pb2_grpc

ADDR = os.environ["GRPC_ADDR"]
WS_URL = os.environ["WS_URL"]
TOKEN_A, TOKEN_B, TOKEN_C = os.environ["TOKEN_A"], os.environ["TOKEN_B"], os.environ["TOKEN_C"]
SERVICE = os.environ["SERVICE_TOKEN"]
CONV = os.environ["CONV_ID"]
WAIT = 10

channel = grpc.insecure_channel(ADDR)
auth = auth_pb2_grpc.AuthServiceStub(channel)
conns = connection_pb2_grpc.ConnectionManagerStub(channel)
msgs = message_pb2_grpc.MessageServiceStub(channel)

passed, failed = 0, 0


def md(token):
    return [("authorization", f"Bearer {token}")]


def check(name):
    def run(fn):
        global passed, failed
        try:
            fn()
            passed += 1
            print(f"ok   {name}", flush=True)
        except Exception:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print(f"FAIL {name}", flush=True)
            traceback.print_exc()
        return fn

    return run


def expect_code(code, fn):
    try:
        fn()
    except grpc.RpcError as e:
        assert e.code() == code, f"expected {code}, got {e.code()}: {e.details()}"
        return e
    raise AssertionError(f"expected {code}, the call succeeded")


def create(token, text, key="", user_id=""):
    m = message_pb2.Message(conversation_id=CONV, text=text, user_id=user_id)
    return msgs.CreateMessage(message_pb2.CreateMessageRequest(message=m, client_msg_id=key), metadata=md(token))


IDS = {}
for label, tok in (("a", TOKEN_A), ("b", TOKEN_B), ("c", TOKEN_C)):
    IDS[label] = auth.VerifyAccessToken(auth_pb2.VerifyRequest(access_token=tok), metadata=md(tok)).user_id


# ---------------- STOMP subscriber (bob) ----------------
class Stomp:
    """A raw STOMP 1.2 client over websocket-client, collecting MESSAGE frames."""

    def __init__(self, token):
        self.ws = websocket.create_connection(WS_URL, timeout=WAIT)
        self.frames = queue.Queue()
        self.buf = ""
        self.send_frame("CONNECT", {"accept-version": "1.2", "host": "localhost", "Authorization": f"Bearer {token}"})
        assert self.next_frame()[0] == "CONNECTED"
        self.send_frame("SUBSCRIBE", {"id": "sub-0", "destination": "/user/queue/messages", "receipt": "r-1"})
        cmd, headers, _ = self.next_frame()
        assert cmd == "RECEIPT" and headers.get("receipt-id") == "r-1", (cmd, headers)

    def send_frame(self, cmd, headers, body=""):
        head = "".join(f"{k}:{v}\n" for k, v in headers.items())
        self.ws.send(f"{cmd}\n{head}\n{body}\x00")

    def next_frame(self, deadline=None):
        deadline = deadline or time.monotonic() + WAIT
        while "\x00" not in self.buf:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            data = self.ws.recv()
            self.buf += data.decode() if isinstance(data, bytes) else data
        raw, self.buf = self.buf.split("\x00", 1)
        raw = raw.lstrip("\r\n")  # heart-beats
        head, _, body = raw.partition("\n\n")
        lines = head.split("\n")
        headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
        return lines[0], headers, body

    def wait_message(self, needle):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            cmd, _, body = self.next_frame(deadline)
            if cmd == "MESSAGE" and needle in body:
                return body
        raise AssertionError(f"no MESSAGE containing {needle!r}")


stomp_bob = Stomp(TOKEN_B)


# ---------------- auth.v1 ----------------
@check("AuthService.Hello is open")
def _():
    assert auth.Hello(auth_pb2.HelloRequest(name="python")).message == "Hello, python!"


@check("AuthService.VerifyAccessToken: valid and invalid tokens")
def _():
    ok = auth.VerifyAccessToken(auth_pb2.VerifyRequest(access_token=TOKEN_A), metadata=md(SERVICE))
    assert ok.valid and ok.user_id == IDS["a"] and ok.workspace_id, ok
    bad = auth.VerifyAccessToken(auth_pb2.VerifyRequest(access_token="x.y.z"), metadata=md(SERVICE))
    assert not bad.valid and not bad.user_id, bad
    expect_code(grpc.StatusCode.UNAUTHENTICATED, lambda: auth.VerifyAccessToken(auth_pb2.VerifyRequest(access_token=TOKEN_A)))


# ---------------- message.v1 ----------------
STATE = {}


@check("MessageService.CreateMessage, delivered to a STOMP subscriber")
def _():
    text = f"grpc says hi {uuid.uuid4()}"
    out = create(TOKEN_A, text, key="py-1")
    assert out.success and out.message.server_seq > 0 and out.message.user_id == IDS["a"], out
    assert out.ack_offset.status == "PERSISTED" and out.ack_offset.acked_seq == out.message.server_seq
    STATE["seq"] = out.message.server_seq
    body = stomp_bob.wait_message(text)
    assert str(out.message.server_seq) in body, body


@check("MessageService.CreateMessage: idempotent retry")
def _():
    again = create(TOKEN_A, "ignored on retry", key="py-1")
    assert again.ack_offset.status == "DUPLICATE" and again.message.server_seq == STATE["seq"], again


@check("MessageService.CreateMessage: errors (PERMISSION_DENIED, INVALID_ARGUMENT, NOT_FOUND, UNAUTHENTICATED)")
def _():
    expect_code(grpc.StatusCode.PERMISSION_DENIED, lambda: create(TOKEN_A, "spoof", user_id=IDS["b"]))
    expect_code(grpc.StatusCode.UNAUTHENTICATED, lambda: create("not-a-token", "x"))
    bad = message_pb2.CreateMessageRequest(message=message_pb2.Message(conversation_id="nope", text="x"))
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, lambda: msgs.CreateMessage(bad, metadata=md(TOKEN_A)))
    unknown = message_pb2.CreateMessageRequest(message=message_pb2.Message(conversation_id=str(uuid.uuid4()), text="x"))
    expect_code(grpc.StatusCode.NOT_FOUND, lambda: msgs.CreateMessage(unknown, metadata=md(TOKEN_A)))


@check("MessageService.CreateMessage: a service credential acts for a user")
def _():
    out = create(SERVICE, "via the gateway", user_id=IDS["b"])
    assert out.success and out.message.user_id == IDS["b"], out


@check("MessageService.StreamCreateMessages: one response per request, in order")
def _():
    n = 100
    reqs = [
        message_pb2.CreateMessageRequest(message=message_pb2.Message(conversation_id=CONV, text=f"s{i}"), client_msg_id=f"py-s{i}")
        for i in range(n)
    ]
    reqs.append(reqs[7])  # a retry inside the stream
    out = list(msgs.StreamCreateMessages(iter(reqs), metadata=md(TOKEN_A), timeout=60))
    assert len(out) == n + 1, len(out)
    seqs = [r.message.server_seq for r in out[:n]]
    assert all(r.success for r in out), [r.error_message for r in out if not r.success]
    assert [r.request_index for r in out] == list(range(n + 1))
    assert [r.message.text for r in out[:n]] == [f"s{i}" for i in range(n)]
    assert seqs == sorted(seqs) and len(set(seqs)) == n, seqs
    assert out[n].ack_offset.status == "DUPLICATE" and out[n].message.server_seq == seqs[7]
    STATE["last_seq"] = seqs[-1]


class AckStream:
    """A StreamAckOffsets call fed from a queue, its responses collected by a thread."""

    def __init__(self, token):
        self.requests = queue.Queue()
        self.responses = queue.Queue()
        self.call = msgs.StreamAckOffsets(iter(self.requests.get, None), metadata=md(token))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for r in self.call:
                self.responses.put(r)
        except grpc.RpcError as e:
            self.responses.put(e)

    def ack(self, seq, status):
        self.requests.put(message_pb2.AckOffset(conversation_id=CONV, acked_seq=seq, status=status))

    def next(self):
        r = self.responses.get(timeout=WAIT)
        if isinstance(r, Exception):
            raise r
        return r

    def close(self):
        self.call.cancel()


@check("MessageService.StreamAckOffsets: echo, and updates to other members")
def _():
    a, b = AckStream(TOKEN_A), AckStream(TOKEN_B)
    time.sleep(0.3)  # both calls established
    try:
        seq = STATE["last_seq"]
        b.ack(seq, "SEEN")
        echo = b.next()
        assert (echo.user_id, echo.acked_seq, echo.status) == (IDS["b"], seq, "SEEN"), echo
        update = a.next()
        assert (update.user_id, update.acked_seq, update.status) == (IDS["b"], seq, "SEEN"), update
    finally:
        a.close()
        b.close()


@check("MessageService.GetEventsAfter (extension): the log after a seq, members only")
def _():
    req = message_pb2.GetEventsAfterRequest(conversation_id=CONV, after_seq=0, limit=0)
    out = msgs.GetEventsAfter(req, metadata=md(TOKEN_B))
    seqs = [e.seq for e in out.events]
    assert out.max_page > 0 and seqs == list(range(1, len(seqs) + 1)), (out.max_page, seqs)
    first = next(e for e in out.events if e.type == "MESSAGE")
    assert json.loads(first.payload_json)["message"]["serverSeq"] == first.seq, first
    page = msgs.GetEventsAfter(
        message_pb2.GetEventsAfterRequest(conversation_id=CONV, user_id=IDS["b"], after_seq=seqs[-3], limit=2),
        metadata=md(SERVICE),
    )
    assert [e.seq for e in page.events] == seqs[-2:], page
    expect_code(grpc.StatusCode.PERMISSION_DENIED, lambda: msgs.GetEventsAfter(req, metadata=md(TOKEN_C)))


@check("MessageService.GetConversationMemberIds (extension)")
def _():
    req = message_pb2.GetConversationMemberIdsRequest(conversation_id=CONV)
    ids = set(msgs.GetConversationMemberIds(req, metadata=md(TOKEN_B)).user_ids)
    assert {IDS["a"], IDS["b"]} <= ids and IDS["c"] not in ids, ids
    expect_code(grpc.StatusCode.PERMISSION_DENIED, lambda: msgs.GetConversationMemberIds(req, metadata=md(TOKEN_C)))


@check("MessageService.UpdateReadPosition (extension): seen implies delivered")
def _():
    seq = STATE["last_seq"]
    req = message_pb2.UpdateReadPositionRequest(conversation_id=CONV, user_id=IDS["a"], seen_seq=seq)
    out = msgs.UpdateReadPosition(req, metadata=md(SERVICE))
    assert (out.user_id, out.delivered_seq, out.seen_seq) == (IDS["a"], seq, seq), out
    empty = message_pb2.UpdateReadPositionRequest(conversation_id=CONV)
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, lambda: msgs.UpdateReadPosition(empty, metadata=md(TOKEN_A)))


# ---------------- connection.v1 ----------------
@check("ConnectionManager: the STOMP session is registered; online users")
def _():
    mine = conns.GetConnectionsByUser(connection_pb2.GetConnectionsByUserRequest(), metadata=md(TOKEN_B)).connections
    assert len(mine) >= 1 and all(c.user_id == IDS["b"] for c in mine), mine
    assert mine[0].session_state == connection_pb2.CONNECTED and mine[0].gateway_node_id
    STATE["node"] = mine[0].gateway_node_id
    online = conns.GetOnlineUsers(connection_pb2.GetOnlineUsersRequest(), metadata=md(TOKEN_A)).user_ids
    assert IDS["b"] in online, online


@check("ConnectionManager: register, ping, unregister (user token)")
def _():
    cid = f"py-{uuid.uuid4()}"
    # A node no gateway registered is refused; the STOMP session's node is live.
    invented = connection_pb2.Connection(connection_id=cid, gateway_node_id="py-node", device_type="python")
    expect_code(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: conns.RegisterConnection(connection_pb2.RegisterConnectionRequest(connection=invented), metadata=md(TOKEN_C)),
    )
    c = connection_pb2.Connection(connection_id=cid, gateway_node_id=STATE["node"], device_type="python")
    r = conns.RegisterConnection(connection_pb2.RegisterConnectionRequest(connection=c), metadata=md(TOKEN_C))
    assert r.success
    r = conns.UpdateLastPing(connection_pb2.UpdateLastPingRequest(connection_id=cid), metadata=md(TOKEN_C))
    assert r.success
    other = conns.UpdateLastPing(connection_pb2.UpdateLastPingRequest(connection_id=cid), metadata=md(TOKEN_A))
    assert not other.success, "not alice's connection"
    r = conns.UnregisterConnection(connection_pb2.UnregisterConnectionRequest(connection_id=cid), metadata=md(TOKEN_C))
    assert r.success
    r = conns.UnregisterConnection(connection_pb2.UnregisterConnectionRequest(connection_id=cid), metadata=md(TOKEN_C))
    assert not r.success


@check("ConnectionManager: service-only listings")
def _():
    node = conns.GetConnectionsByGatewayNode(
        connection_pb2.GetConnectionsByGatewayNodeRequest(gateway_node_id=STATE["node"]), metadata=md(SERVICE)
    ).connections
    assert any(c.user_id == IDS["b"] for c in node), node
    everything = conns.GetAllConnections(connection_pb2.GetAllConnectionsRequest(), metadata=md(SERVICE)).connections
    assert len(everything) >= len(node)
    expect_code(
        grpc.StatusCode.PERMISSION_DENIED,
        lambda: conns.GetAllConnections(connection_pb2.GetAllConnectionsRequest(), metadata=md(TOKEN_A)),
    )


@check("ConnectionManager.GetConnectionsByUsers (extension)")
def _():
    req = connection_pb2.GetConnectionsByUsersRequest(user_ids=[IDS["a"], IDS["b"]])
    found = conns.GetConnectionsByUsers(req, metadata=md(SERVICE)).connections
    assert any(c.user_id == IDS["b"] for c in found), found
    expect_code(grpc.StatusCode.PERMISSION_DENIED, lambda: conns.GetConnectionsByUsers(req, metadata=md(TOKEN_A)))


# ---------------- health and reflection ----------------
@check("grpc.health.v1.Health/Check: SERVING")
def _():
    check_rpc = channel.unary_unary("/grpc.health.v1.Health/Check")
    for service in ("", "message.v1.MessageService", "auth.v1.AuthService", "connection.v1.ConnectionManager"):
        name = service.encode()
        raw = check_rpc(b"\x0a" + bytes([len(name)]) + name if name else b"", timeout=WAIT)
        assert raw == b"\x08\x01", (service, raw)  # status = SERVING (1)


EXPECTED = {
    "auth.v1.AuthService",
    "connection.v1.ConnectionManager",
    "message.v1.MessageService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}


def reflect(method, req):
    rpc = channel.stream_stream(
        method,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return next(iter(rpc(iter([req]), timeout=WAIT)))


@check("reflection (v1alpha and v1): exactly the chat services, health and reflection")
def _():
    for method in (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    ):
        out = reflect(method, reflection_pb2.ServerReflectionRequest(list_services=""))
        names = {s.name for s in out.list_services_response.service}
        assert names == EXPECTED, (method, sorted(names))
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    req = reflection_pb2.ServerReflectionRequest(file_containing_symbol="message.v1.MessageService")
    out = next(iter(stub.ServerReflectionInfo(iter([req]), timeout=WAIT)))
    assert out.file_descriptor_response.file_descriptor_proto, out


print(f"grpc: {passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
