"""srcore.download against a loopback HTTP server: resume, checksums, offline, extract, fetch, CLI.

Nothing here leaves 127.0.0.1, and every request has a timeout (5 s here, fetch's default 30 s).
"""
import dataclasses
import hashlib
import io
import socket
import tarfile
import threading
import zipfile
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from srcore.download import (
    DATASETS,
    DownloadError,
    arrange,
    download,
    extract,
    fetch,
    main,
)

TIMEOUT = 5  # seconds, for every request the tests make
DATA = bytes(range(256)) * 64  # 16 KiB, so chunks and offsets mean something


class _Handler(BaseHTTPRequestHandler):
    """Serves ``files`` (path -> bytes); honours ``Range: bytes=N-`` unless told not to."""

    files: dict[str, bytes]
    requests: list[tuple[str, str | None]]
    honour_range: bool

    def do_GET(self):
        range_header = self.headers.get("Range")
        self.requests.append((self.path, range_header))
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if range_header and self.honour_range:
            start = int(range_header.removeprefix("bytes=").rstrip("-"))  # download() sends "N-"
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):  # keep pytest output clean
        pass


@dataclasses.dataclass
class Server:
    base_url: str
    files: dict
    requests: list

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


@contextmanager
def _serving(honour_range: bool):
    files, requests = {}, []
    handler = type("Handler", (_Handler,),
                   {"files": files, "requests": requests, "honour_range": honour_range})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_port}", files, requests)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=TIMEOUT)


@pytest.fixture
def server():
    with _serving(honour_range=True) as s:
        yield s


@pytest.fixture
def server_ignoring_range():
    with _serving(honour_range=False) as s:
        yield s


@pytest.fixture
def dead_url():
    """A loopback URL where nothing listens: bind a port, then free it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/benchmark.tar"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def get(url, dest, **kwargs):
    return download(url, dest, timeout=TIMEOUT, progress=False, **kwargs)


# --- download ---------------------------------------------------------------------------------

def test_download_verifies_md5_and_sha256(server, tmp_path):
    server.files["/a.bin"] = DATA
    dest = get(server.url("a.bin"), tmp_path / "a.bin", md5=md5(DATA), sha256=sha256(DATA),
               chunk_size=1000)
    assert dest.read_bytes() == DATA
    assert not (tmp_path / "a.bin.part").exists()


def test_existing_dest_with_matching_checksum_makes_no_request(server, tmp_path):
    (tmp_path / "a.bin").write_bytes(DATA)
    get(server.url("a.bin"), tmp_path / "a.bin", md5=md5(DATA))
    assert server.requests == []


def test_resume_sends_range_from_the_part_size(server, tmp_path):
    server.files["/a.bin"] = DATA
    k = 5000
    (tmp_path / "a.bin.part").write_bytes(DATA[:k])
    dest = get(server.url("a.bin"), tmp_path / "a.bin", sha256=sha256(DATA))
    assert server.requests == [("/a.bin", f"bytes={k}-")]
    assert dest.read_bytes() == DATA


def test_part_already_whole_answers_416_and_is_verified(server, tmp_path):
    server.files["/a.bin"] = DATA
    (tmp_path / "a.bin.part").write_bytes(DATA)
    dest = get(server.url("a.bin"), tmp_path / "a.bin", md5=md5(DATA))
    assert server.requests == [("/a.bin", f"bytes={len(DATA)}-")]
    assert dest.read_bytes() == DATA


def test_server_ignoring_range_restarts_from_zero(server_ignoring_range, tmp_path):
    server_ignoring_range.files["/a.bin"] = DATA
    (tmp_path / "a.bin.part").write_bytes(DATA[:5000])
    dest = get(server_ignoring_range.url("a.bin"), tmp_path / "a.bin", md5=md5(DATA))
    assert server_ignoring_range.requests == [("/a.bin", "bytes=5000-")]
    assert dest.read_bytes() == DATA


def test_checksum_mismatch_names_both_digests_and_leaves_nothing(server, tmp_path):
    server.files["/a.bin"] = DATA
    wrong = "0" * 32
    with pytest.raises(DownloadError) as err:
        get(server.url("a.bin"), tmp_path / "a.bin", md5=wrong)
    assert wrong in str(err.value) and md5(DATA) in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_offline_names_url_and_says_offline(dead_url, tmp_path):
    with pytest.raises(DownloadError) as err:
        get(dead_url, tmp_path / "benchmark.tar")
    assert dead_url in str(err.value) and "offline" in str(err.value)
    assert str(tmp_path / "benchmark.tar") in str(err.value)


def test_http_404_gives_the_status(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        get(server.url("missing.zip"), tmp_path / "missing.zip")
    assert list(tmp_path.iterdir()) == []


# --- extract and arrange ----------------------------------------------------------------------

def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz" if path.suffix == ".gz" else "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


MEMBERS = {"top/a.png": b"a", "top/sub/b.png": b"bb"}


@pytest.mark.parametrize("make, name", [(_zip, "x.zip"), (_tar, "x.tar"), (_tar, "x.tar.gz")])
def test_extract_zip_and_tar(make, name, tmp_path):
    out = extract(make(tmp_path / name, MEMBERS), tmp_path / "out")
    assert (out / "top/a.png").read_bytes() == b"a"
    assert (out / "top/sub/b.png").read_bytes() == b"bb"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "out"])  # no temp left


@pytest.mark.parametrize("make", [_zip, _tar])
@pytest.mark.parametrize("evil", ["../evil.png", "top/../../evil.png", "/tmp/evil.png"])
def test_extract_rejects_path_traversal(make, evil, tmp_path):
    archive = make(tmp_path / ("x.zip" if make is _zip else "x.tar"), {**MEMBERS, evil: b"!"})
    with pytest.raises(DownloadError, match="unsafe member"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path.parent / "evil.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == [archive.name]


def test_arrange_moves_folders_and_keeps_filled_places(tmp_path):
    extracted = extract(_tar(tmp_path / "b.tar", {
        "benchmark/Set5/HR/baby.png": b"hr",
        "benchmark/Set5/LR_bicubic/X2/babyx2.png": b"lr",
        "benchmark/B100/HR/3096.png": b"b100",
    }), tmp_path / "x")
    root = tmp_path / "root"
    (root / "benchmark/Set14").mkdir(parents=True)  # the user's own copy stays as it is
    layout = {"benchmark/Set5": "benchmark/Set5", "benchmark/B100": "benchmark/BSD100",
              "benchmark/Set14": "benchmark/Set14"}
    placed = arrange(extracted, root, layout)
    assert placed == [root / "benchmark/Set5", root / "benchmark/BSD100", root / "benchmark/Set14"]
    assert (root / "benchmark/Set5/LR_bicubic/X2/babyx2.png").read_bytes() == b"lr"
    assert (root / "benchmark/BSD100/HR/3096.png").read_bytes() == b"b100"
    with pytest.raises(DownloadError, match="Urban100"):
        arrange(extracted, root, {"benchmark/Urban100": "benchmark/Urban100"})


# --- fetch and the CLI ------------------------------------------------------------------------

def _fake_archives(tmp_path: Path) -> dict[str, bytes]:
    """Tiny stand-ins for the real archives, with their real folder names."""
    tmp_path.mkdir()
    bench = {f"benchmark/{s}/HR/{s.lower()}_1.png": s.encode()
             for s in ("Set5", "Set14", "B100", "Urban100")}
    bench["benchmark/Set5/LR_bicubic/X4/set5_1x4.png"] = b"lr"
    return {
        "benchmark.tar": _tar(tmp_path / "benchmark.tar", bench).read_bytes(),
        "DIV2K_train_HR.zip": _zip(tmp_path / "DIV2K_train_HR.zip", {
            f"DIV2K_train_HR/{i:04d}.png": b"t" for i in (1, 2, 3)}).read_bytes(),
        "DIV2K_valid_HR.zip": _zip(tmp_path / "DIV2K_valid_HR.zip", {
            "DIV2K_valid_HR/0801.png": b"v"}).read_bytes(),
    }


@pytest.fixture
def mirror(server, tmp_path, monkeypatch):
    """The loopback server holding fake archives; the catalogue pins their checksums."""
    fakes = _fake_archives(tmp_path / "src")
    for name, data in fakes.items():
        server.files[f"/mirror/{name}"] = data
    for key, dataset in DATASETS.items():
        archives = tuple(dataclasses.replace(a, md5=md5(fakes[a.file])) for a in dataset.archives)
        monkeypatch.setitem(DATASETS, key, dataclasses.replace(dataset, archives=archives))
    return server


def test_fetch_lays_out_benchmark_and_div2k_and_is_idempotent(mirror, tmp_path):
    root = tmp_path / "data"
    for name in ("benchmark", "div2k"):
        assert fetch(name, root, base_url=mirror.url("mirror/")) == root
    assert (root / "benchmark/Set5/HR/set5_1.png").read_bytes() == b"Set5"
    assert (root / "benchmark/Set5/LR_bicubic/X4/set5_1x4.png").read_bytes() == b"lr"
    assert (root / "benchmark/BSD100/HR/b100_1.png").read_bytes() == b"B100"
    assert {p.name for p in (root / "benchmark").iterdir()} == {"Set5", "Set14", "BSD100",
                                                                "Urban100"}
    assert sorted(p.name for p in (root / "train/DIV2K").glob("*.png")) == [
        "0001.png", "0002.png", "0003.png"]
    assert (root / "valid/DIV2K/0801.png").exists()
    assert sorted(p.name for p in root.iterdir()) == ["benchmark", "train", "valid"]
    assert len(mirror.requests) == 3

    for name in ("benchmark", "div2k"):
        fetch(name, root, base_url=mirror.url("mirror"))
    assert len(mirror.requests) == 3


def test_fetch_unknown_name_lists_known_ones(tmp_path):
    with pytest.raises(KeyError, match="benchmark") as err:
        fetch("set5", tmp_path)
    assert "div2k" in str(err.value)


def test_cli_fetches_and_prints_where(mirror, tmp_path, capsys):
    assert main(["div2k", "--root", str(tmp_path / "data"), "--base-url",
                 mirror.url("mirror")]) == 0
    assert str(tmp_path / "data" / "train" / "DIV2K") in capsys.readouterr().out


def test_cli_offline_exits_1_with_the_message(dead_url, tmp_path, capsys):
    base_url = dead_url.rsplit("/", 1)[0]
    assert main(["benchmark", "--root", str(tmp_path), "--base-url", base_url]) == 1
    err = capsys.readouterr().err
    assert dead_url in err and "offline" in err and "Traceback" not in err
