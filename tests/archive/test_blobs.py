import io

from archive.blobs import BlobStore


def test_identical_content_is_stored_once(tmp_path):
    store = BlobStore(tmp_path)
    first = store.put_bytes(b"DICM" * 1000)
    second = store.put_stream(io.BytesIO(b"DICM" * 1000))
    assert first.sha256 == second.sha256
    assert first.created and not second.created
    files = [p for p in (tmp_path / "sha256").rglob("*") if p.is_file()]
    assert files == [store.path(first.sha256)]
    assert store.read(first.sha256) == b"DICM" * 1000


def test_blob_is_named_by_its_sha256_and_no_temp_file_remains(tmp_path):
    store = BlobStore(tmp_path)
    blob = store.put_bytes(b"hello")
    assert blob.sha256 == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert store.path(blob.sha256).relative_to(tmp_path).parts[:3] == ("sha256", "2c", "f2")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_failed_write_leaves_nothing(tmp_path):
    store = BlobStore(tmp_path)

    class Broken(io.RawIOBase):
        def read(self, n=-1):
            raise OSError("disk went away")

    try:
        store.put_stream(Broken())
    except OSError:
        pass
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not (tmp_path / "sha256").exists() or not any((tmp_path / "sha256").rglob("*"))
