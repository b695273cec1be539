"""File checksums: sha1 of weight files and checkpoints, MD5 of the ImageNet archives."""
import hashlib

__all__ = ["file_digest", "sha1_file"]


def file_digest(path, algorithm="sha1", chunk=1 << 22):
    """Hex digest of a file's bytes, read in chunks (archives are 150 GB)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sha1_file(path):
    """Hex sha1 of a file."""
    return file_digest(path, "sha1")
