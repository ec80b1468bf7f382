"""Request and upload limits on the live server (configured for the suite: 2 MB bodies, workbooks unpacking to
2 MB, 2,000 CSV rows): a body over the limit gets 413 before it is read (anonymous too, announced or chunked), a
zip-bomb workbook and a CSV file with too many rows 422 at once, empty / Latin-1 / binary / corrupt uploads and odd
file names a 4xx with a message, and stale uploads are removed."""

from __future__ import annotations

import io
import os
import re
import select
import socket
import time
import zipfile
from urllib.parse import urlsplit

from hostile.hostile_live import LIMITS, Browser, Live


def _raw(live: Live, head: str, body_chunks: int, chunk: bytes, chunked: bool) -> tuple[bytes, int]:
    """Send a request head and then up to ``body_chunks`` pieces of body until the server answers; the answer's
    first bytes and how many body bytes went out before it came."""
    url = urlsplit(live.base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        s.sendall(head.encode())
        sent = 0
        for _ in range(body_chunks):
            readable, _, _ = select.select([s], [], [], 0)
            if readable:
                break
            piece = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") if chunked else chunk
            try:
                s.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        s.settimeout(10)
        answer = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
            try:
                got = s.recv(65536)
            except ConnectionResetError:
                break
            if not got:
                break
            answer += got
    return answer, sent


def test_a_body_over_the_limit_gets_413_before_it_is_read(live: Live) -> None:
    limit = LIMITS["max_body_bytes"]
    assert live.app.state.limits.max_body_bytes == limit
    kinds = {"/login": "application/x-www-form-urlencoded", "/api/token": "application/json",
             "/import": "multipart/form-data; boundary=xyz"}  # what each route reads  # fmt: skip
    for path, cookie in (("/login", ""), ("/api/token", ""), ("/import", _cookie(live.session("dm1")))):
        announced = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {kinds[path]}\r\n"
                     f"Content-Length: {100 * 2**20}\r\n{cookie}\r\n")  # fmt: skip
        start = time.perf_counter()
        answer, sent = _raw(live, announced, 0, b"", chunked=False)  # not one byte of the 100 MB sent
        assert answer.startswith(b"HTTP/1.1 413"), (path, answer[:100])
        assert time.perf_counter() - start < 5 and sent == 0
        chunked = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {kinds[path]}\r\n"
                   f"Transfer-Encoding: chunked\r\n{cookie}\r\n")  # fmt: skip
        answer, sent = _raw(live, chunked, 3000, b"y" * 65536, chunked=True)  # up to 190 MB offered
        # 413 once the bytes received pass the limit, or sooner a 400 (a form field over Starlette's 1 MB)
        assert re.match(rb"HTTP/1.1 (413|400) ", answer), (path, answer[:100])
        assert sent < limit + 16 * 2**20, sent  # the limit, plus what the sockets' buffers held
    with live.client() as c:  # small requests still pass
        assert c.get("/login").status_code == 200


def _cookie(browser: Browser) -> str:
    return "Cookie: " + "; ".join(f"{k}={v}" for k, v in browser.http.cookies.items()) + "\r\n"


def _upload(browser: Browser, name: str, data: bytes) -> tuple[int, list[str], float]:
    """Upload one file for a check; the settled answer (the background check's page), its problems and the time."""
    start = time.perf_counter()
    res = browser.post("/import", files=[("files", (name, data, "application/octet-stream"))])
    for _ in range(600):
        if res.status_code == 303 and res.headers["location"].startswith("/import/jobs/"):
            res = browser.get(res.headers["location"])
        elif res.status_code == 202:
            time.sleep(0.02)
            res = browser.get(str(res.url.path))
        else:
            break
    problems = re.findall(r"<li>(.*?)</li>", res.text, flags=re.S)
    return res.status_code, problems, time.perf_counter() - start


def _workbook(sheet_bytes: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", "<worksheet>" + " " * sheet_bytes + "</worksheet>")
    return buffer.getvalue()


def test_a_zip_bomb_and_too_many_rows_are_refused_at_once(live: Live) -> None:
    dm = live.session("dm1")
    bomb = _workbook(200 * 2**20)  # 200 MB of sheet XML in about 200 kB
    assert len(bomb) < 400_000
    status, problems, seconds = _upload(dm, "study.xlsx", bomb)
    assert status == 422 and any("uncompressed" in p or "unpack" in p for p in problems), (status, problems)
    assert seconds < 5
    rows = b"patient_id,last_contact_date\n" + b"".join(b"R%d,2020-01-01\n" % i for i in range(LIMITS["max_csv_rows"]
                                                                                             + 5))  # fmt: skip
    status, problems, seconds = _upload(dm, "follow_up.csv", rows)
    assert status == 422 and any("rows" in p for p in problems), (status, problems)
    assert seconds < 5


def test_bad_uploads_and_odd_file_names_get_a_4xx_with_a_message(live: Live) -> None:
    dm = live.session("dm1")
    uploads = [("patients.csv", b""), ("patients.csv", "patient_id,diagnosis\nA1,é\n".encode("latin-1")),
               ("patients.csv", bytes(range(256)) * 8), ("study.xlsx", b"PK\x03\x04 not a workbook"),
               ("study.xlsx", _workbook(10)), ("../x.csv", b"patient_id\nA\n"), ("a" * 300 + ".csv", b"patient_id\n"),
               ("pat\x00ients.csv", b"patient_id\nA\n"), ("..", b"patient_id\nA\n"), (".", b"patient_id\nA\n"),
               ("patients", b"patient_id\nA\n"), ("/etc/passwd", b"root:x:0:0\n"), ("x.exe", b"MZ\x90\x00"),
               ("\u202epatients.csv", b"patient_id\nA\n"), ("p\u00e4tients.csv", b"patient_id\nA\n")]  # fmt: skip
    for name, data in uploads:
        status, problems, _ = _upload(dm, name, data)
        assert 400 <= status < 500 and problems and all(p.strip() for p in problems), (name[:20], status, problems)


def test_stale_uploads_are_removed(live: Live) -> None:
    folder = live.app.state.uploads
    old, fresh = folder / "stale-upload-h4", folder / "fresh-upload-h4"
    for f in (old, fresh):
        f.mkdir(exist_ok=True)
        (f / "patients.csv").write_text("patient_id\nSECRET\n")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    dm = live.session("dm1")
    _upload(dm, "follow_up.csv", b"patient_id,last_contact_date\nMST15,2025-10-31\n")
    assert not old.exists() and fresh.exists()
    fresh.joinpath("patients.csv").unlink()
    fresh.rmdir()
