"""Build a Parquet file from row groups of other Parquet files without decoding their data pages.

A Parquet file is ``PAR1 | column chunks | footer | footer length (4 bytes, LE) | PAR1``. The footer is
a Thrift-compact-encoded ``FileMetaData`` whose row groups locate their column chunks by *absolute* byte
offsets. So a row group's bytes can be copied into another file as they are, provided its footer entry
is rewritten with the offsets shifted by how far the bytes moved. pyarrow encodes and reads the data;
its ``FileMetaData`` cannot change offsets, so this module holds the small Thrift compact codec that
does (the protocol: https://github.com/apache/thrift/blob/master/doc/specs/thrift-compact-protocol.md,
the footer's fields: https://github.com/apache/parquet-format/blob/master/src/main/thrift/parquet.thrift).

Used by the publisher (``publish.py``) to make the next version of a mart's Parquet copy from the
previous version's unchanged row groups plus newly encoded ones for the dates that changed.
Encrypted files are not supported (we never write them).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

MAGIC = b"PAR1"

# Thrift compact protocol types
STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)

# parquet.thrift field ids
FILE_NUM_ROWS, FILE_ROW_GROUPS, FILE_SCHEMA, FILE_KV, FILE_ENCRYPTION = 3, 4, 2, 5, 8
RG_COLUMNS, RG_NUM_ROWS, RG_FILE_OFFSET, RG_ORDINAL = 1, 3, 5, 7
CC_FILE_PATH, CC_FILE_OFFSET, CC_META, CC_OFFSET_INDEX, CC_COLUMN_INDEX = 1, 2, 3, 4, 6
CM_OFFSETS = (
    9,
    10,
    11,
    14,
)  # data_page_offset, index_page_offset, dictionary_page_offset, bloom_filter_offset

Struct = dict[int, tuple[int, Any]]


class ParquetSpliceError(ValueError):
    """A file is not a Parquet file this module can splice (encrypted, corrupt, another schema)."""


# ---- Thrift compact codec (schema-less: structs are {field id: (type, value)}) -------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, kind: int) -> Any:
        if kind == BYTE:
            return struct.unpack("b", bytes([self.byte()]))[0]
        if kind in (I16, I32, I64):
            return self.zigzag()
        if kind == DOUBLE:
            self.pos += 8
            return struct.unpack("<d", self.data[self.pos - 8 : self.pos])[0]
        if kind == BINARY:
            size = self.varint()
            self.pos += size
            return bytes(self.data[self.pos - size : self.pos])
        if kind in (LIST, SET):
            header = self.byte()
            size, element = header >> 4, header & 0x0F
            if size == 15:
                size = self.varint()
            return element, [self.element(element) for _ in range(size)]
        if kind == MAP:
            size = self.varint()
            if not size:
                return 0, 0, []
            types = self.byte()
            key, val = types >> 4, types & 0x0F
            return key, val, [(self.element(key), self.element(val)) for _ in range(size)]
        if kind == STRUCT:
            return self.struct()
        raise ParquetSpliceError(f"unknown Thrift compact type {kind} at byte {self.pos}")

    def element(self, kind: int) -> Any:
        if kind in (TRUE, FALSE):  # booleans inside collections are one byte: 1 true, 0 or 2 false
            return self.byte() == TRUE
        return self.value(kind)

    def struct(self) -> Struct:
        fields: Struct = {}
        last = 0
        while True:
            header = self.byte()
            if header == STOP:
                return fields
            kind, delta = header & 0x0F, header >> 4
            field = last + delta if delta else self.zigzag()
            last = field
            fields[field] = (kind, kind == TRUE if kind in (TRUE, FALSE) else self.value(kind))


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def varint(self, n: int) -> None:
        while True:
            if n < 0x80:
                self.out.append(n)
                return
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7

    def zigzag(self, n: int) -> None:
        self.varint((n << 1) ^ (n >> 63))

    def value(self, kind: int, value: Any) -> None:
        if kind == BYTE:
            self.out += struct.pack("b", value)
        elif kind in (I16, I32, I64):
            self.zigzag(value)
        elif kind == DOUBLE:
            self.out += struct.pack("<d", value)
        elif kind == BINARY:
            self.varint(len(value))
            self.out += value
        elif kind in (LIST, SET):
            element, items = value
            if len(items) < 15:
                self.out.append(len(items) << 4 | element)
            else:
                self.out.append(0xF0 | element)
                self.varint(len(items))
            for item in items:
                self.element(element, item)
        elif kind == MAP:
            key, val, items = value
            self.varint(len(items))
            if items:
                self.out.append(key << 4 | val)
                for k, v in items:
                    self.element(key, k)
                    self.element(val, v)
        elif kind == STRUCT:
            self.struct(value)
        else:
            raise ParquetSpliceError(f"unknown Thrift compact type {kind}")

    def element(self, kind: int, value: Any) -> None:
        if kind in (TRUE, FALSE):
            self.out.append(TRUE if value else FALSE)
        else:
            self.value(kind, value)

    def struct(self, fields: Struct) -> None:
        last = 0
        for field in sorted(fields):
            kind, value = fields[field]
            if kind in (TRUE, FALSE):
                kind = TRUE if value else FALSE
            if 0 < field - last <= 15:
                self.out.append((field - last) << 4 | kind)
            else:
                self.out.append(kind)
                self.zigzag(field)
            last = field
            if kind not in (TRUE, FALSE):
                self.value(kind, value)
        self.out.append(STOP)


def decode_struct(data: bytes) -> Struct:
    reader = _Reader(data)
    result = reader.struct()
    if reader.pos != len(data):
        raise ParquetSpliceError(f"{len(data) - reader.pos} bytes left after the footer")
    return result


def encode_struct(fields: Struct) -> bytes:
    writer = _Writer()
    writer.struct(fields)
    return bytes(writer.out)


# ---- footers and row groups ----------------------------------------------------------------------


@dataclass(frozen=True)
class Footer:
    """A Parquet file's decoded footer and where its column chunks end."""

    metadata: Struct
    data_end: int  # offset of the footer = end of the last byte a row group may use

    @property
    def row_groups(self) -> list[Struct]:
        return list(self.metadata.get(FILE_ROW_GROUPS, (LIST, (STRUCT, [])))[1][1])

    @property
    def schema_key(self) -> bytes:
        """The schema and key/value metadata, encoded: row groups can only be mixed when these match."""
        return encode_struct({k: v for k, v in self.metadata.items() if k in (FILE_SCHEMA, FILE_KV)})


def read_footer(data: bytes | memoryview) -> Footer:
    """The footer of a whole Parquet file held in ``data`` (or a prefix ending with a footer)."""
    if len(data) < 12 or bytes(data[:4]) != MAGIC or bytes(data[-4:]) != MAGIC:
        raise ParquetSpliceError("not a Parquet file (magic bytes missing)")
    size = struct.unpack("<I", bytes(data[-8:-4]))[0]
    start = len(data) - 8 - size
    if start < 4:
        raise ParquetSpliceError("footer length points before the start of the file")
    metadata = decode_struct(bytes(data[start:-8]))
    if FILE_ENCRYPTION in metadata:
        raise ParquetSpliceError("encrypted Parquet files are not supported")
    return Footer(metadata, start)


def read_file_footer(path: str) -> Footer:
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        length = handle.tell()
        if length < 12:
            raise ParquetSpliceError(f"{path} is too short to be a Parquet file")
        handle.seek(length - 8)
        tail = handle.read(8)
        size = struct.unpack("<I", tail[:4])[0]
        start = length - 8 - size
        if tail[4:] != MAGIC or start < 4:
            raise ParquetSpliceError(f"{path} is not a Parquet file (magic bytes missing)")
        handle.seek(start)
        metadata = decode_struct(handle.read(size))
    if FILE_ENCRYPTION in metadata:
        raise ParquetSpliceError("encrypted Parquet files are not supported")
    return Footer(metadata, start)


def _shift_field(fields: Struct, field: int, delta: int) -> None:
    if field in fields:
        kind, value = fields[field]
        if value > 0:  # 0 means "not set" for the deprecated file offsets some writers leave at 0
            fields[field] = (kind, value + delta)


def shift_row_group(row_group: Struct, delta: int) -> Struct:
    """A copy of ``row_group`` whose byte offsets point ``delta`` bytes further into the file."""
    shifted = dict(row_group)
    _shift_field(shifted, RG_FILE_OFFSET, delta)
    element, columns = shifted[RG_COLUMNS][1]
    moved = []
    for original in columns:
        chunk = dict(original)
        if CC_FILE_PATH in chunk:
            raise ParquetSpliceError("row groups whose columns live in other files cannot be spliced")
        for field in (CC_FILE_OFFSET, CC_OFFSET_INDEX, CC_COLUMN_INDEX):
            _shift_field(chunk, field, delta)
        meta = dict(chunk[CC_META][1])
        for field in CM_OFFSETS:
            _shift_field(meta, field, delta)
        chunk[CC_META] = (STRUCT, meta)
        moved.append(chunk)
    shifted[RG_COLUMNS] = (LIST, (element, moved))
    return shifted


def row_group_rows(row_group: Struct) -> int:
    return int(row_group[RG_NUM_ROWS][1])


def footer_bytes(template: Footer, row_groups: Sequence[Struct]) -> bytes:
    """``footer | length | PAR1`` listing ``row_groups`` (in this order), other fields from ``template``."""
    metadata = dict(template.metadata)
    ordered = []
    for ordinal, row_group in enumerate(row_groups):
        row_group = dict(row_group)
        if RG_ORDINAL in row_group:
            row_group[RG_ORDINAL] = (I16, ordinal)
        ordered.append(row_group)
    metadata[FILE_ROW_GROUPS] = (LIST, (STRUCT, ordered))
    metadata[FILE_NUM_ROWS] = (I64, sum(row_group_rows(rg) for rg in ordered))
    encoded = encode_struct(metadata)
    return encoded + struct.pack("<I", len(encoded)) + MAGIC


def chunk_bytes(part: bytes) -> tuple[Footer, bytes]:
    """A whole Parquet file in memory: its footer and the bytes between the leading magic and the footer."""
    footer = read_footer(part)
    return footer, part[4 : footer.data_end]


def check_same_schema(footers: Iterable[Footer]) -> None:
    keys = {footer.schema_key for footer in footers}
    if len(keys) > 1:
        raise ParquetSpliceError("the row groups to splice come from files with different schemas")
