"""srcore.download against a loopback HTTP server: resume, checksums, offline, extract, the catalogue,
each set's layout and renaming, shared archives, --paper/--profile, refusals, the CLI.

Nothing here leaves 127.0.0.1, and every request has a timeout (5 s). The archives are small
stand-ins in each source's real packing (zip or tar, the same folders, file names and extra files);
the ``mirror`` fixture swaps the catalogue's checksums and sizes for theirs, while
test_catalogue_states_what_is_known_of_each_source checks the real catalogue.
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
from PIL import Image

from srcore import download
from srcore.download import BSD100_IDS, CATALOGUE, DownloadError, extract, fetch, main
from srcore.paper import config

TIMEOUT = 5  # seconds, for every request the tests make
DATA = bytes(range(256)) * 64  # 16 KiB, so chunks and offsets mean something


class _Handler(BaseHTTPRequestHandler):
    """Serves ``files`` (path -> bytes); honours ``Range: bytes=N-`` unless told not to.

    A path in ``drop_after`` (path -> N) has its next answer cut after N bytes of the body, the
    connection closed: an interrupted download.
    """

    files: dict[str, bytes]
    requests: list[tuple[str, str | None]]
    honour_range: bool
    drop_after: dict[str, int]

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
        cut = self.drop_after.pop(self.path, None)
        self.wfile.write(body[start:] if cut is None else body[start:start + cut])
        self.close_connection = True

    def log_message(self, *args):  # keep pytest output clean
        pass


@dataclasses.dataclass
class Server:
    base_url: str
    files: dict
    requests: list
    drop_after: dict = dataclasses.field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def asked(self, path: str) -> list:
        return [r for r in self.requests if r[0] == path]


@contextmanager
def _serving(honour_range: bool):
    files, requests, drop_after = {}, [], {}
    handler = type("Handler", (_Handler,), {"files": files, "requests": requests,
                                            "honour_range": honour_range, "drop_after": drop_after})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_port}", files, requests, drop_after)
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
    return download.download(url, dest, timeout=TIMEOUT, progress=False, **kwargs)


# --- download ---------------------------------------------------------------------------------

def test_download_verifies_md5_and_sha256(server, tmp_path):
    server.files["/a.bin"] = DATA
    dest = get(server.url("a.bin"), tmp_path / "a.bin", md5=md5(DATA), sha256=sha256(DATA),
               chunk_size=1000)
    assert dest.read_bytes() == DATA
    assert not (tmp_path / "a.bin.part").exists()


def test_existing_dest_with_matching_checksum_makes_no_request(server, tmp_path):
    (tmp_path / "a.bin").write_bytes(DATA)
    get(server.url("a.bin"), tmp_path / "a.bin", md5=md5(DATA), size=len(DATA))
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


# --- extract ----------------------------------------------------------------------------------

def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _tar(members: dict[str, bytes], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


MEMBERS = {"top/a.png": b"a", "top/sub/b.png": b"bb", "other/c.png": b"c"}
PACKERS = {"x.zip": _zip, "x.tar": _tar, "x.tar.gz": lambda m: _tar(m, "w:gz")}


@pytest.mark.parametrize("name", PACKERS)
def test_extract_zip_and_tar(name, tmp_path):
    (tmp_path / name).write_bytes(PACKERS[name](MEMBERS))
    out = extract(tmp_path / name, tmp_path / "out")
    assert (out / "top/a.png").read_bytes() == b"a"
    assert (out / "top/sub/b.png").read_bytes() == b"bb"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "out"])  # no temp left


@pytest.mark.parametrize("name", ["x.zip", "x.tar"])
def test_extract_only_some_folders(name, tmp_path):
    (tmp_path / name).write_bytes(PACKERS[name](MEMBERS))
    out = extract(tmp_path / name, tmp_path / "out", only=["top/sub"])
    assert [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()] == ["top/sub/b.png"]


@pytest.mark.parametrize("name", ["x.zip", "x.tar"])
@pytest.mark.parametrize("evil", ["../evil.png", "top/../../evil.png", "/tmp/evil.png"])
def test_extract_rejects_path_traversal(name, evil, tmp_path):
    archive = tmp_path / name
    archive.write_bytes(PACKERS[name]({**MEMBERS, evil: b"!"}))
    with pytest.raises(DownloadError, match="unsafe member"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path.parent / "evil.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == [archive.name]


# --- the catalogue ----------------------------------------------------------------------------

EIGHT = ["DIV2K", "T91", "BSD200", "General100", "Set5", "Set14", "BSD100", "Urban100"]


def test_catalogue_states_what_is_known_of_each_source():
    assert sorted(CATALOGUE) == sorted(EIGHT)
    for name, data_set in CATALOGUE.items():
        assert data_set.description and data_set.renaming and data_set.placements, name
        for placement in data_set.placements:
            a = placement.archive
            assert a.url.startswith(("https://", "http://")) and a.page.startswith(("https://", "http://")), name
            assert a.licence and a.packing and a.file, name
            assert (isinstance(a.size, int) and a.size > 0) or "no" in a.size_note or "not" in a.size_note, name
            assert a.md5 is None or len(a.md5) == 32 and int(a.md5, 16) >= 0, name
            assert a.sha256 is None or len(a.sha256) == 64 and int(a.sha256, 16) >= 0, name
            assert a.checksum_note, name  # who publishes the checksum, or that nobody does
            if a.md5 is None and a.sha256 is None:
                assert "no checksum is published" in a.checksum_note, name
            assert placement.parts and all(part.count > 0 for part in placement.parts), name
    shared = {p.archive.file for name in ("Set5", "Set14", "BSD100", "Urban100") for p in CATALOGUE[name].placements}
    assert shared == {"benchmark.tar"}


def test_renaming_rules_give_selfexsr_names():
    bsd = CATALOGUE["BSD100"].placements[0].rename
    assert (bsd("101085.png"), bsd("3096.png"), bsd("97033x4.png")) == ("img_001.png", "img_067.png", "img_100x4.png")
    assert sorted(BSD100_IDS) == list(BSD100_IDS) and len(set(BSD100_IDS)) == 100
    urban = CATALOGUE["Urban100"].placements[0].rename
    assert (urban("img004.png"), urban("img062x3.png")) == ("img_004.png", "img_062x3.png")
    for rename, wrong in ((bsd, "12345.png"), (urban, "img_004.png")):
        with pytest.raises(ValueError):
            rename(wrong)


# --- stand-in archives, in each source's packing ----------------------------------------------

SET5 = ("baby", "bird", "butterfly", "head", "woman")
SET14 = ("baboon", "barbara", "bridge", "coastguard", "comic", "face", "flowers", "foreman", "lenna",
         "man", "monarch", "pepper", "ppt3", "zebra")
T91 = [f"t{i}" for i in range(1, 67) if i != 41] + [f"tt{i}" for i in range(1, 28) if i != 11]
BSD200 = [str(100_000 + 7 * i) for i in range(200)]  # stand-in IDs
SELFEXSR = [f"img_{i:03d}" for i in range(1, 101)]


def _bmp(i: int) -> bytes:
    image = Image.new("RGB", (3, 2), (i % 256, 7, 200))
    image.putpixel((1, 1), (1, 2, i % 256))
    buffer = io.BytesIO()
    image.save(buffer, format="BMP")
    return buffer.getvalue()


def _edsr_set(folder: str, stems) -> dict[str, bytes]:
    """EDSR's benchmark/<folder>/HR/<stem>.png and LR_bicubic/X<s>/<stem>x<s>.png; each holds its own name."""
    stems = list(stems)
    names = [f"benchmark/{folder}/HR/{stem}.png" for stem in stems]
    names += [f"benchmark/{folder}/LR_bicubic/X{s}/{stem}x{s}.png" for s in (2, 3, 4) for stem in stems]
    return {name: name.encode() for name in names}


def _stand_ins() -> dict[str, bytes]:
    """file name -> bytes of a small archive packed as the real one is (see the catalogue's packing)."""
    bench = {**_edsr_set("Set5", SET5), **_edsr_set("Set14", SET14),
             **_edsr_set("B100", BSD100_IDS[::-1]),  # tar order is not the layout's order
             **_edsr_set("Urban100", [f"img{i:03d}" for i in range(1, 101)])}
    bsds = {f"BSDS300/images/train/{i}.jpg": f"train {i}".encode() for i in BSD200}
    bsds |= {f"BSDS300/images/test/{i}.jpg": b"test" for i in BSD100_IDS}
    bsds |= {"BSDS300/iids_train.txt": "\n".join(BSD200).encode(), "BSDS300/iids_test.txt": b"3096\n"}
    srcnn = {f"SRCNN/Train/{stem}.bmp": _bmp(i) for i, stem in enumerate(T91)}
    srcnn |= {"SRCNN/Test/Set5/baby_GT.bmp": _bmp(0), "SRCNN/Test/Set14/ppt3.bmp": _bmp(1),
              "SRCNN/generate_train.m": b"folder = 'Train';", "SRCNN/generate_test.m": b"%",
              "SRCNN/SRCNN_net.prototxt": b"name: 'SRCNN'", "SRCNN/SRCNN_solver.prototxt": b"base_lr: 0.0001"}
    return {
        "DIV2K_train_HR.zip": _zip({f"DIV2K_train_HR/{i:04d}.png": b"t%d" % i for i in range(1, 801)}),
        "DIV2K_valid_HR.zip": _zip({f"DIV2K_valid_HR/{i:04d}.png": b"v%d" % i for i in range(801, 901)}),
        "benchmark.tar": _tar(bench),
        "BSDS300-images.tgz": _tar(bsds, "w:gz"),
        "SRCNN_train.zip": _zip(srcnn),
        "General-100.zip": _zip({f"General-100/im_{i}.bmp": _bmp(i) for i in range(1, 101)}),
    }


@pytest.fixture(scope="module")
def stand_ins():
    return _stand_ins()


def _member(archive: bytes, name: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            return zf.read(name)
    except zipfile.BadZipFile:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
            return tf.extractfile(name).read()


def _pinned_to(fakes: dict[str, bytes]) -> dict:
    """The catalogue with each archive's checksums and size those of its stand-in, where the real one has them."""
    def pin(a):
        data = fakes[a.file]
        return dataclasses.replace(a, md5=a.md5 and md5(data), sha256=a.sha256 and sha256(data),
                                   size=a.size and len(data))
    return {name: dataclasses.replace(ds, placements=tuple(dataclasses.replace(p, archive=pin(p.archive))
                                                           for p in ds.placements))
            for name, ds in CATALOGUE.items()}


@pytest.fixture
def mirror(server, stand_ins, monkeypatch):
    """The loopback server holding the stand-ins under /m/; the catalogue pins their checksums."""
    for file, data in stand_ins.items():
        server.files[f"/m/{file}"] = data
    monkeypatch.setattr(download, "CATALOGUE", _pinned_to(stand_ins))
    return server


def run(mirror, names, root, **kwargs):
    return fetch(names, root, base_url=mirror.url("m"), timeout=TIMEOUT, progress=False, **kwargs)


def cli(mirror, root, *args) -> int:
    return main([*args, "--root", str(root), "--base-url", mirror.url("m")])


def files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _benchmark_layout(stems) -> set[str]:
    return ({f"HR/{s}.png" for s in stems}
            | {f"LR_bicubic/X{x}/{s}x{x}.png" for x in (2, 3, 4) for s in stems})


# set -> {folder under the root: the files it must hold}
LAYOUT = {
    "DIV2K": {"train/DIV2K": {f"{i:04d}.png" for i in range(1, 801)},
              "valid/DIV2K": {f"{i:04d}.png" for i in range(801, 901)}},
    "T91": {"train/T91": {f"{stem}.png" for stem in T91}},
    "BSD200": {"train/BSD200": {f"{i}.jpg" for i in BSD200}},
    "General100": {"benchmark/General100": {f"HR/im_{i}.png" for i in range(1, 101)}},
    "Set5": {"benchmark/Set5": _benchmark_layout(SET5)},
    "Set14": {"benchmark/Set14": _benchmark_layout(SET14)},
    "BSD100": {"benchmark/BSD100": _benchmark_layout(SELFEXSR)},
    "Urban100": {"benchmark/Urban100": _benchmark_layout(SELFEXSR)},
}
# set -> (file in the layout, archive, member it came from): renaming and contents
SPOTS = {
    "DIV2K": [("valid/DIV2K/0801.png", "DIV2K_valid_HR.zip", "DIV2K_valid_HR/0801.png")],
    "BSD200": [("train/BSD200/100007.jpg", "BSDS300-images.tgz", "BSDS300/images/train/100007.jpg")],
    "Set5": [("benchmark/Set5/LR_bicubic/X4/womanx4.png", "benchmark.tar", "benchmark/Set5/LR_bicubic/X4/womanx4.png")],
    "Set14": [("benchmark/Set14/HR/comic.png", "benchmark.tar", "benchmark/Set14/HR/comic.png")],
    "BSD100": [("benchmark/BSD100/HR/img_001.png", "benchmark.tar", "benchmark/B100/HR/101085.png"),
               ("benchmark/BSD100/HR/img_067.png", "benchmark.tar", "benchmark/B100/HR/3096.png"),
               ("benchmark/BSD100/LR_bicubic/X3/img_100x3.png", "benchmark.tar",
                "benchmark/B100/LR_bicubic/X3/97033x3.png")],
    "Urban100": [("benchmark/Urban100/HR/img_004.png", "benchmark.tar", "benchmark/Urban100/HR/img004.png"),
                 ("benchmark/Urban100/LR_bicubic/X2/img_062x2.png", "benchmark.tar",
                  "benchmark/Urban100/LR_bicubic/X2/img062x2.png")],
}
# set -> (PNG in the layout, archive, BMP it was re-encoded from): the same pixels
PIXELS = {
    "T91": ("train/T91/tt27.png", "SRCNN_train.zip", "SRCNN/Train/tt27.bmp"),
    "General100": ("benchmark/General100/HR/im_100.png", "General-100.zip", "General-100/im_100.bmp"),
}


def _pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


# --- fetching sets ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", EIGHT)
def test_each_set_lands_in_the_layout_with_its_names(name, mirror, stand_ins, tmp_path):
    root = tmp_path / "data"
    folders = run(mirror, [name], root)[name]
    assert folders == [root / folder for folder in LAYOUT[name]]
    for folder, expected in LAYOUT[name].items():
        assert files(root / folder) == expected, folder
    for path, archive, member in SPOTS.get(name, []):
        assert (root / path).read_bytes() == _member(stand_ins[archive], member), path
    if name in PIXELS:
        path, archive, member = PIXELS[name]
        assert _pixels((root / path).read_bytes()) == _pixels(_member(stand_ins[archive], member))
    assert {p.relative_to(root).as_posix() for p in root.glob("*/*")} == set(LAYOUT[name])  # nothing else
    archives = {p.archive.file for p in CATALOGUE[name].placements}
    assert sorted(r[0] for r in mirror.requests) == sorted(f"/m/{a}" for a in archives)


def test_all_lays_out_every_set_and_downloads_each_archive_once(mirror, stand_ins, tmp_path, capsys):
    root = tmp_path / "data"
    assert cli(mirror, root, "all") == 0
    for folders in LAYOUT.values():
        for folder, expected in folders.items():
            assert files(root / folder) == expected
    assert sorted(r[0] for r in mirror.requests) == sorted(f"/m/{file}" for file in stand_ins)
    assert sorted(p.name for p in root.iterdir()) == ["benchmark", "train", "valid"]  # downloads/ is gone
    out = capsys.readouterr().out
    assert all(f"{name} (fetched): {root.resolve()}" in out for name in EIGHT)


def test_sets_sharing_an_archive_download_it_once_and_lay_out_only_themselves(mirror, tmp_path):
    root = tmp_path / "data"
    run(mirror, ["Set5", "urban100"], root)  # names in any case
    assert mirror.asked("/m/benchmark.tar") == [("/m/benchmark.tar", None)]
    assert sorted(p.name for p in (root / "benchmark").iterdir()) == ["Set5", "Urban100"]


def test_paper_profile_fetches_exactly_the_sets_that_run_reads(mirror, tmp_path):
    paper = "lee2021_srgan_kd"  # the parameters of its profile that name sets, read here one by one
    params = config.load(paper, "smoke")
    expected = set(params["train_sets"]) | set(params["eval_sets"]) | set(params["rating_sets"])
    expected |= set(params["eval_limit"]) | {params["fig_image"].split("/")[0]}
    assert expected < set(CATALOGUE)  # the run leaves some sets out (DIV2K at least), so "exactly" is tested
    assert set(download.sets_for_run(paper, "smoke")) == expected

    root = tmp_path / "data"
    assert cli(mirror, root, "--paper", paper, "--profile", "smoke") == 0
    assert {p.relative_to(root).as_posix() for p in root.glob("*/*")} == {f for n in expected for f in LAYOUT[n]}
    archives = {p.archive.file for name in expected for p in CATALOGUE[name].placements}
    assert sorted(r[0] for r in mirror.requests) == sorted(f"/m/{file}" for file in archives)  # each once


def test_a_set_outside_the_catalogue_is_named_with_where_to_put_it(mirror, tmp_path, monkeypatch, capsys):
    named = {"Set5": ["eval_sets"], "Manga109": ["eval_sets", "niqe_sets"], "MyPhotos": ["train_sets"]}
    monkeypatch.setattr(download, "sets_for_run", lambda paper, profile: named)
    root = tmp_path / "data"
    assert cli(mirror, root, "--paper", "any") == 0
    err = capsys.readouterr().err
    assert (f"Manga109 (named by eval_sets, niqe_sets) is not in the catalogue: place it at "
            f"{root / 'benchmark/Manga109/HR'} by hand") in err
    assert str(root / "train/MyPhotos") in err
    assert files(root / "benchmark/Set5") == LAYOUT["Set5"]["benchmark/Set5"]


def test_interrupted_download_resumes_with_a_range_request(mirror, stand_ins, tmp_path):
    root, cut = tmp_path / "data", 40_000
    mirror.drop_after["/m/benchmark.tar"] = cut  # the server closes the connection part-way
    with pytest.raises(DownloadError, match="rerun to resume") as err:
        run(mirror, ["Set14"], root)
    assert "benchmark.tar" in str(err.value)
    part = root / "downloads" / "benchmark.tar.part"
    assert part.stat().st_size == cut and not (root / "benchmark").exists()

    run(mirror, ["Set14"], root)
    assert mirror.asked("/m/benchmark.tar") == [("/m/benchmark.tar", None), ("/m/benchmark.tar", f"bytes={cut}-")]
    assert files(root / "benchmark/Set14") == LAYOUT["Set14"]["benchmark/Set14"]
    assert not (root / "downloads").exists()


def _spoil(file: str, data: bytes) -> bytes:
    if file == "BSDS300-images.tgz":
        return data[: len(data) // 2]  # truncated
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + data[middle + 64:]  # corrupt


@pytest.mark.parametrize("name, file", [("BSD200", "BSDS300-images.tgz"), ("General100", "General-100.zip"),
                                        ("Set5", "benchmark.tar")])
def test_truncated_or_corrupt_archive_is_refused_naming_the_file(name, file, mirror, stand_ins, tmp_path):
    root = tmp_path / "data"
    mirror.files[f"/m/{file}"] = _spoil(file, stand_ins[file])
    with pytest.raises(DownloadError) as err:
        run(mirror, [name], root)
    message = str(err.value)
    assert file in message and ("delete it and rerun" in message.lower() or "rerun to download it again" in message)
    if CATALOGUE[name].placements[0].archive.md5:  # a pinned checksum catches it before extraction
        assert "checksum mismatch" in message
    assert not any((root / folder).exists() for folder in LAYOUT[name])


def test_archive_missing_a_member_is_refused_naming_member_and_archive(mirror, stand_ins, tmp_path, monkeypatch):
    bench = {n: d for n, d in _edsr_set("Urban100", [f"img{i:03d}" for i in range(1, 101)]).items()
             if "/X3/" not in n}
    fakes = {**stand_ins, "benchmark.tar": _tar(bench)}
    mirror.files["/m/benchmark.tar"] = fakes["benchmark.tar"]
    monkeypatch.setattr(download, "CATALOGUE", _pinned_to(fakes))
    root = tmp_path / "data"
    with pytest.raises(DownloadError) as err:
        run(mirror, ["Urban100"], root)
    assert "benchmark/Urban100/LR_bicubic/X3" in str(err.value) and "benchmark.tar" in str(err.value)
    assert not (root / "benchmark/Urban100").exists()


def test_archive_short_of_images_is_refused(mirror, stand_ins, tmp_path, monkeypatch):
    fakes = {**stand_ins, "General-100.zip": _zip({f"General-100/im_{i}.bmp": _bmp(i) for i in range(1, 100)})}
    mirror.files["/m/General-100.zip"] = fakes["General-100.zip"]
    monkeypatch.setattr(download, "CATALOGUE", _pinned_to(fakes))
    with pytest.raises(DownloadError, match="General-100.zip: General-100/ gave 99 images for General100, "
                                            "expected 100"):
        run(mirror, ["General100"], tmp_path / "data")
    assert not (tmp_path / "data/benchmark/General100").exists()


def test_web_page_instead_of_the_archive_is_refused(mirror, tmp_path):
    mirror.files["/m/General-100.zip"] = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>"
    with pytest.raises(DownloadError, match="web page, not General-100.zip.*in a browser"):
        run(mirror, ["General100"], tmp_path / "data")
    assert not (tmp_path / "data/downloads/General-100.zip").exists()


def test_second_call_makes_no_request_and_a_set_already_there_is_left_alone(mirror, tmp_path, capsys):
    root = tmp_path / "data"
    own = root / "benchmark/Set14/HR/mine.png"  # the user's own copy of Set14
    own.parent.mkdir(parents=True)
    own.write_bytes(b"mine")
    assert cli(mirror, root, "Set5", "Set14") == 0
    assert len(mirror.requests) == 1 and files(root / "benchmark/Set14") == {"HR/mine.png"}
    assert cli(mirror, root, "Set5", "Set14") == 0
    assert len(mirror.requests) == 1
    out = capsys.readouterr().out
    assert f"Set5 (already there): {(root / 'benchmark/Set5').resolve()}" in out


# --- the command line -------------------------------------------------------------------------

def test_help_lists_the_eight_sets_all_and_what_each_is(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in [*EIGHT, "all"])
    assert "academic research purpose only" in out and "none published" in out and "250 MB" in out


def test_list_shows_sources_sizes_terms_checksums_and_renaming(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for data_set in CATALOGUE.values():
        for placement in data_set.placements:
            assert placement.archive.url in out and placement.archive.licence in out
        assert data_set.renaming in out
    assert "250,112,000 bytes" in out and "no checksum is published" in out


def test_unknown_name_lists_the_known_ones(tmp_path, capsys):
    assert main(["Set15", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Set15" in err and all(name in err for name in [*EIGHT, "all"])
    with pytest.raises(KeyError, match="Urban100"):
        fetch("Set15", tmp_path)
    assert main(["--paper", "nopaper", "--root", str(tmp_path)]) == 2
    assert "unknown paper 'nopaper'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_offline_exits_1_with_the_message(dead_url, tmp_path, capsys):
    base_url = dead_url.rsplit("/", 1)[0]
    assert main(["benchmark", "--root", str(tmp_path), "--base-url", base_url]) == 1
    err = capsys.readouterr().err
    assert dead_url in err and "offline" in err and "Traceback" not in err
