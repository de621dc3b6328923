"""The record and frame wire formats, encoded and decoded independently.

Written from the layout documented in hw/appdep/appdep-wire.h (never
generated from it), so the tests that use it also pin the format: a change
on the C side that these bytes do not follow fails a test.

Records (QEMU -> appdep-fwd, files of appdep-dump and the server's export)
and frames (appdep-fwd <-> appdep-server) share a 16-byte header:
    0 u32 magic  4 u16 version  6 u16 type  8 u32 length  12 u32 reserved
All integers little-endian.
"""

import socket
import struct

MAGIC = 0x50444441
VERSION = 1
HDR_LEN = 16
HDR = struct.Struct("<IHHII")

THREAD = 1                                  # record type
THREAD_LEN = 176
VM_LEN = 64
COMM_LEN = 16
# after the header: time_ns serial vm op family vcpu pid tid comm saddr
# daddr sport dport seq reserved bytes
THREAD_BODY = struct.Struct("<QQ64sBBHII16s16s16sHHIIQ")

HELLO, BATCH, ACK, COMMAND, RESULT = 16, 17, 18, 19, 20
FRAME_PROTOCOL = 1
HOST_LEN = 64
FRAME_VM_LEN = 152                          # one HELLO inventory entry
FRAME_ADDR_LEN = 20
MSG_LEN = 256
INSPECT_ON, INSPECT_OFF = 1, 2

OPS = {"send": 1, "recv": 2, "close": 3}
OP_NAMES = {v: k for k, v in OPS.items()}
FAMILY_IPV4, FAMILY_IPV6 = 4, 6

assert HDR.size == HDR_LEN and HDR_LEN + THREAD_BODY.size == THREAD_LEN


def header(rtype, length, magic=MAGIC, version=VERSION):
    return HDR.pack(magic, version, rtype, length, 0)


def _addr(family, text):
    af = socket.AF_INET6 if family == FAMILY_IPV6 else socket.AF_INET
    return socket.inet_pton(af, text).ljust(16, b"\0")


def record(op="send", vm="vm1", pid=100, tid=101, comm="srv", family=4,
           saddr="10.0.0.1", sport=8080, daddr="10.0.0.2", dport=40000,
           nbytes=64, seq=1000, time_ns=1_700_000_000_000_000_000, serial=0,
           vcpu=0, version=VERSION, magic=MAGIC, length=THREAD_LEN,
           rtype=THREAD):
    """One thread record.  @op is a name or a raw number; @family 4 or 6
    (another number is encoded with an IPv4 address); the header fields
    can be made wrong on purpose."""
    opnum = OPS[op] if isinstance(op, str) else op
    body = THREAD_BODY.pack(time_ns, serial, vm.encode(), opnum, family,
                            vcpu, pid, tid, comm.encode(),
                            _addr(family, saddr), _addr(family, daddr),
                            sport, dport, seq & 0xffffffff, 0, nbytes)
    return header(rtype, length, magic, version) + body


def cstr(b):
    """A NUL-padded text field as str."""
    return b.split(b"\0", 1)[0].decode(errors="replace")


def decode_record(b):
    """The fields of the thread record at the start of @b, as a dict with
    raw numbers (op, family) and text addresses."""
    magic, version, rtype, length, _ = HDR.unpack_from(b, 0)
    (time_ns, serial, vm, op, family, vcpu, pid, tid, comm, saddr, daddr,
     sport, dport, seq, _, nbytes) = THREAD_BODY.unpack_from(b, HDR_LEN)
    af = socket.AF_INET6 if family == FAMILY_IPV6 else socket.AF_INET
    n = 16 if family == FAMILY_IPV6 else 4
    return {"magic": magic, "version": version, "type": rtype,
            "length": length, "time_ns": time_ns, "serial": serial,
            "vm": cstr(vm), "op": op, "family": family, "vcpu": vcpu,
            "pid": pid, "tid": tid, "comm": cstr(comm),
            "saddr": socket.inet_ntop(af, saddr[:n]),
            "daddr": socket.inet_ntop(af, daddr[:n]),
            "sport": sport, "dport": dport, "seq": seq, "bytes": nbytes}


def records(raw):
    """Decode a stream of well-formed thread records (an export file)."""
    if len(raw) % THREAD_LEN:
        raise ValueError(f"{len(raw)} bytes: not a whole number of records")
    return [decode_record(raw[i:i + THREAD_LEN])
            for i in range(0, len(raw), THREAD_LEN)]


# --- frames ---------------------------------------------------------------

def frame(ftype, body):
    return header(ftype, HDR_LEN + len(body)) + body


def ack(batch):
    return frame(ACK, struct.pack("<Q", batch))


def command(cid, vm, op):
    return frame(COMMAND, struct.pack("<Q64sB7x", cid, vm.encode(), op))


def batch(number, recs):
    return frame(BATCH, struct.pack("<QII", number, len(recs), 0) +
                 b"".join(recs))


def decode_hello(body):
    """HELLO body (after the header) -> {protocol, host, vms: [{vm,
    enabled, addrs}]}."""
    proto, nvms, host = struct.unpack_from("<II64s", body, 0)
    vms = []
    for i in range(nvms):
        off = 8 + HOST_LEN + i * FRAME_VM_LEN
        e = body[off:off + FRAME_VM_LEN]
        name, enabled, naddr = struct.unpack_from("<64sBB", e, 0)
        addrs = []
        for j in range(naddr):
            a = 72 + j * FRAME_ADDR_LEN
            fam, raw = e[a], e[a + 2:a + 18]
            af = socket.AF_INET6 if fam == FAMILY_IPV6 else socket.AF_INET
            addrs.append(socket.inet_ntop(
                af, raw[:16 if fam == FAMILY_IPV6 else 4]))
        vms.append({"vm": cstr(name), "enabled": enabled, "addrs": addrs})
    return {"protocol": proto, "host": cstr(host), "vms": vms}


def decode_batch(body):
    """BATCH body -> (batch number, [record bytes]); ValueError when the
    count and the length disagree or the reserved field is not 0."""
    number, count, zero = struct.unpack_from("<QII", body)
    if len(body) != 16 + count * THREAD_LEN or zero != 0:
        raise ValueError(f"batch {number}: {count} records in "
                         f"{len(body)} bytes, reserved {zero}")
    return number, [body[16 + i * THREAD_LEN:16 + (i + 1) * THREAD_LEN]
                    for i in range(count)]


def decode_result(body):
    """RESULT body -> (command id, status, message)."""
    cid, status, _ = struct.unpack_from("<QiI", body)
    return cid, status, cstr(body[16:16 + MSG_LEN])
