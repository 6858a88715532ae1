"""The voice library on the volume (``VOICES_DIR``): a voice is read as one version.

Two layouts are read:

- ``NAME.voice``, what ``POST /v1/audio/voices`` and ``migrate`` write: one zip archive
  (stored, not compressed; an archive with a compressed member is refused unread, so
  no member can inflate: a zip bomb costs nothing) holding ``audio.wav`` (or ``audio.flac``/``.mp3``/``.ogg``) and,
  when there is one, ``transcript.txt``. A new version is written to a temporary file in
  the folder and renamed over the old one (one atomic rename), so a reader that opened the
  file reads one whole version, whatever happens to the name afterwards.
- ``NAME.wav`` (or .flac/.mp3/.ogg) + ``NAME.txt``, the flat pair of libraries copied by
  hand. Two files cannot be replaced at once: a pair replaced by hand, file by file, while
  jobs read it can be read half old, half new. ``migrate`` packs flat pairs into
  ``NAME.voice`` (``python -m higgs_worker.io.voices migrate VOICES_DIR``).

``NAME.voice`` wins over a flat pair of the same name.

A folder that cannot be written (full, read-only, no permission) fails ``publish`` and
``delete`` with ``WorkerError("storage", ...)`` naming the system's reason.

``VoiceLibrary.read(name, known)`` opens the voice's file(s) once and returns a
``VoiceVersion``: the transcript and the audio bytes, read through those same open files,
and ``key``, the identity of the files read (device, inode, size, modification and change
times). ``key`` is what a cache of encoded clips is keyed by; when ``known(key)`` says the
caller already holds that version's clip, the audio is not read.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..contract.errors import INVALID_INPUT, NOT_FOUND, REFERENCE_AUDIO, STORAGE, WorkerError
from ..contract.schema import check_name

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
VOICE_SUFFIX = ".voice"
TRANSCRIPT_MEMBER = "transcript.txt"
DESCRIPTION_MEMBER = "description.txt"  # a designed voice: the speaker description it came from
AUDIO_MEMBER = "audio"  # + the audio's suffix: audio.wav
MAX_MEMBER_BYTES = 256 * 2**20  # a damaged or hostile archive cannot make a reader inflate more
READ_ATTEMPTS = 3  # a flat pair changed while it was read (migrated, deleted) is read again


@dataclass(frozen=True)
class VoiceVersion:
    """One version of a voice, as read: clip and transcript from the same files."""

    name: str
    key: tuple  # identity of the files read: the cache key of the encoded clip
    transcript: str | None
    audio: bytes | None  # None when the caller already knew this version (``known(key)``)


class _Changed(Exception):
    """A flat pair changed while it was read: read again."""


class _Unreadable(Exception):
    """A ``.voice`` archive that is refused; the message says why."""


def _member(archive: zipfile.ZipFile, member: str) -> bytes:
    """A member's bytes, never more than MAX_MEMBER_BYTES read, whatever its header says."""
    with archive.open(member) as stream:
        data = stream.read(MAX_MEMBER_BYTES + 1)
    if len(data) > MAX_MEMBER_BYTES:
        raise _Unreadable(f"a member over {MAX_MEMBER_BYTES} bytes")
    return data


def _unwritable(exc: OSError) -> WorkerError:
    return WorkerError(
        STORAGE,
        f"the voice library (VOICES_DIR) cannot be written ({exc.strerror or type(exc).__name__}); "
        "free space on the volume or make the folder writable",
    )


def _identity(info: os.stat_result) -> tuple:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _transcript(data: bytes) -> str | None:
    return data.decode("utf-8", errors="replace").strip() or None


def pack(audio: bytes, transcript: str | None, audio_suffix: str = ".wav", description: str | None = None) -> bytes:
    """A voice as one archive: ``audio<suffix>``, ``transcript.txt`` and ``description.txt`` (when given)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{AUDIO_MEMBER}{audio_suffix}", audio)
        if transcript and transcript.strip():
            archive.writestr(TRANSCRIPT_MEMBER, transcript.strip().encode("utf-8"))
        if description and description.strip():
            archive.writestr(DESCRIPTION_MEMBER, description.strip().encode("utf-8"))
    return buffer.getvalue()


class VoiceLibrary:
    def __init__(self, folder: str):
        self.folder = Path(folder)

    # -- reading ------------------------------------------------------------------------

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        found = set()
        for path in self.folder.iterdir():
            if path.name.endswith(VOICE_SUFFIX):
                found.add(path.name[: -len(VOICE_SUFFIX)])
            elif path.suffix.lower() in AUDIO_SUFFIXES:
                found.add(path.stem)
        return sorted(name for name in found if _is_name(name) and self._exists(name))

    def read(self, name: str, known: Callable[[tuple], bool] = lambda key: False) -> VoiceVersion:
        """The voice's current version (``WorkerError`` invalid_input when there is none)."""
        try:
            check_name(name, "voice")
        except ValueError as exc:
            raise WorkerError(INVALID_INPUT, str(exc)) from None
        for _ in range(READ_ATTEMPTS):
            try:
                version = self._read_pack(name, known) or self._read_flat(name, known)
            except _Changed:
                continue
            if version is not None:
                return version
            break
        else:
            raise WorkerError(REFERENCE_AUDIO, f"the voice {name!r} kept changing while it was read; try again")
        known_names = self.names()
        listing = ", ".join(known_names[:30]) if known_names else "none (the library is empty)"
        raise WorkerError(
            INVALID_INPUT,
            f"unknown voice {name!r}; voices in VOICES_DIR: {listing}. "
            "Use null for a voice the model picks, or reference_audio to clone one.",
            kind=NOT_FOUND,
            parameter="voice",
        )

    def has(self, name: str) -> bool:
        """Whether the library holds a voice ``name`` (a plain name; False for any other)."""
        return _is_name(name) and self._exists(name)

    def description(self, name: str) -> str | None:
        """The speaker description a designed voice was made from (None: uploaded, flat or unreadable)."""
        handle = self._open(name, VOICE_SUFFIX) if _is_name(name) else None
        if handle is None:
            return None
        with handle:
            try:
                with zipfile.ZipFile(handle) as archive:
                    info = archive.getinfo(DESCRIPTION_MEMBER)
                    if info.file_size > MAX_MEMBER_BYTES:
                        return None
                    return _transcript(archive.read(info))
            except (KeyError, zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
                return None

    def _has_pack(self, name: str) -> bool:
        path = self._path(name, VOICE_SUFFIX)
        return path is not None and path.is_file()

    def _exists(self, name: str) -> bool:
        candidates = [self._path(name, VOICE_SUFFIX), *(self._path(name, s) for s in AUDIO_SUFFIXES)]
        return any(path is not None and path.is_file() for path in candidates)

    def _path(self, name: str, suffix: str) -> Path | None:
        """``NAME<suffix>`` in the folder, or None when it would resolve outside it (a symlink)."""
        path = self.folder / f"{name}{suffix}"
        try:
            inside = path.resolve().parent == self.folder.resolve()
        except OSError:
            return None
        return path if inside else None

    def _open(self, name: str, suffix: str):
        """An open regular file ``NAME<suffix>`` inside the folder, or None."""
        path = self._path(name, suffix)
        if path is None:
            return None
        try:
            handle = open(path, "rb")  # noqa: SIM115 - the caller closes it
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            return None
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            handle.close()
            return None
        return handle

    def _read_pack(self, name: str, known: Callable[[tuple], bool]) -> VoiceVersion | None:
        handle = self._open(name, VOICE_SUFFIX)
        if handle is None:
            return None
        with handle:
            key = ("voice", *_identity(os.fstat(handle.fileno())))
            try:
                with zipfile.ZipFile(handle) as archive:
                    members = {info.filename: info for info in archive.infolist()}
                    audio_member = next((m for m in members if m.startswith(f"{AUDIO_MEMBER}.")), None)
                    if audio_member is None:
                        raise _Unreadable("no audio member")
                    for info in members.values():
                        if info.compress_type != zipfile.ZIP_STORED:
                            raise _Unreadable("a compressed member: .voice files store theirs")
                        if max(info.file_size, info.compress_size) > MAX_MEMBER_BYTES:
                            raise _Unreadable(f"a member over {MAX_MEMBER_BYTES} bytes")
                    text = _member(archive, TRANSCRIPT_MEMBER) if TRANSCRIPT_MEMBER in members else b""
                    audio = None if known(key) else _member(archive, audio_member)
            except (_Unreadable, zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
                why = str(exc) if isinstance(exc, _Unreadable) else type(exc).__name__
                raise WorkerError(
                    REFERENCE_AUDIO, f"the voice {name!r} in VOICES_DIR cannot be read ({why}); upload it again"
                ) from None
        return VoiceVersion(name, key, _transcript(text), audio)

    def _read_flat(self, name: str, known: Callable[[tuple], bool]) -> VoiceVersion | None:
        for suffix in AUDIO_SUFFIXES:
            audio_file = self._open(name, suffix)
            if audio_file is not None:
                break
        else:
            if self._has_pack(name):
                raise _Changed()  # packed meanwhile
            return None
        with audio_file:
            audio_id = _identity(os.fstat(audio_file.fileno()))
            text_file = self._open(name, ".txt")
            text_id: tuple = ()
            text = b""
            if text_file is not None:
                with text_file:
                    text_id = _identity(os.fstat(text_file.fileno()))
                    text = text_file.read()
            key = ("flat", suffix, *audio_id, *text_id)
            audio = None if known(key) else audio_file.read()
        # Packed or deleted while read (both remove the audio file first, then the transcript):
        # the transcript read may already have been missing; read again.
        path = self._path(name, suffix)
        try:
            unchanged = path is not None and _identity(path.stat()) == audio_id
        except OSError:
            unchanged = False
        if not unchanged or self._has_pack(name):
            raise _Changed()
        return VoiceVersion(name, key, _transcript(text), audio)

    # -- writing ------------------------------------------------------------------------

    def publish(
        self,
        name: str,
        audio: bytes,
        transcript: str | None,
        audio_suffix: str = ".wav",
        description: str | None = None,
    ) -> None:
        """Write a new version of ``name`` as ``NAME.voice`` in one rename, then remove the
        flat pair of that name (its audio first, so a reader of the pair sees the change)."""
        check_name(name, "voice")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            target = self._path(name, VOICE_SUFFIX)
            if target is None:
                raise ValueError("the voice name must stay inside VOICES_DIR")
            _write_atomic(target, pack(audio, transcript, audio_suffix, description))
            self._remove_flat(name)
        except OSError as exc:
            raise _unwritable(exc) from None

    def delete(self, name: str) -> bool:
        """Remove every file of ``name``; False when there was no such voice."""
        check_name(name, "voice")
        if not self.folder.is_dir():
            return False
        try:
            found = self._has_pack(name)
            if found:
                self._path(name, VOICE_SUFFIX).unlink(missing_ok=True)
            return self._remove_flat(name) or found
        except OSError as exc:
            raise _unwritable(exc) from None

    def _remove_flat(self, name: str) -> bool:
        found = False
        for suffix in (*AUDIO_SUFFIXES, ".txt"):  # the audio first: see _read_flat
            path = self._path(name, suffix)
            if path is not None and path.is_file():
                path.unlink(missing_ok=True)
                found = found or suffix != ".txt"
        return found

    def migrate(self) -> list[str]:
        """Pack every flat pair that has no ``NAME.voice`` yet; return the names packed."""
        packed = []
        for name in self.names():
            if self._path(name, VOICE_SUFFIX) is None or self._has_pack(name):
                continue
            version = self.read(name)
            self.publish(name, version.audio or b"", version.transcript, audio_suffix=version.key[1])
            packed.append(name)
        return packed


def _is_name(name: str) -> bool:
    try:
        check_name(name, "voice")
    except ValueError:
        return False
    return True


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, flush it to disk, rename it over ``path``."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    try:  # the rename itself, on disk (not every file system lets a folder be synced)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> None:
    """``python -m higgs_worker.io.voices migrate VOICES_DIR``: pack flat pairs into NAME.voice."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m higgs_worker.io.voices", description=main.__doc__)
    parser.add_argument("command", choices=["migrate"])
    parser.add_argument("folder", help="the voice library (VOICES_DIR)")
    args = parser.parse_args(argv)
    try:
        packed = VoiceLibrary(args.folder).migrate()
    except WorkerError as exc:  # a voice that cannot be read, a folder that cannot be written
        raise SystemExit(f"migrate: {exc}") from None
    print(f"packed {len(packed)} voice(s) into NAME.voice: {', '.join(packed) or '-'}")


if __name__ == "__main__":
    main()
