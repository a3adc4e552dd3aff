import datetime

from google.longrunning import operations_pb2 as _operations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
    JOB_STATE_PAUSED: _ClassVar[JobState]

class ItemState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ITEM_STATE_UNSPECIFIED: _ClassVar[ItemState]
    ITEM_STATE_PENDING: _ClassVar[ItemState]
    ITEM_STATE_DONE: _ClassVar[ItemState]
    ITEM_STATE_FAILED: _ClassVar[ItemState]
    ITEM_STATE_SKIPPED: _ClassVar[ItemState]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
JOB_STATE_PAUSED: JobState
ITEM_STATE_UNSPECIFIED: ItemState
ITEM_STATE_PENDING: ItemState
ITEM_STATE_DONE: ItemState
ITEM_STATE_FAILED: ItemState
ITEM_STATE_SKIPPED: ItemState

class EffectStep(_message.Message):
    __slots__ = ("effect", "parameters")
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    effect: str
    parameters: _struct_pb2.Struct
    def __init__(self, effect: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class InputSequence(_message.Message):
    __slots__ = ("pattern", "first_frame", "last_frame", "paths", "video", "frames_per_item")
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    FIRST_FRAME_FIELD_NUMBER: _ClassVar[int]
    LAST_FRAME_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PER_ITEM_FIELD_NUMBER: _ClassVar[int]
    pattern: str
    first_frame: int
    last_frame: int
    paths: _containers.RepeatedScalarFieldContainer[str]
    video: str
    frames_per_item: int
    def __init__(self, pattern: _Optional[str] = ..., first_frame: _Optional[int] = ..., last_frame: _Optional[int] = ..., paths: _Optional[_Iterable[str]] = ..., video: _Optional[str] = ..., frames_per_item: _Optional[int] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("steps", "input", "output_pattern", "format", "idempotency_key", "description", "seed")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PATTERN_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[EffectStep]
    input: InputSequence
    output_pattern: str
    format: str
    idempotency_key: str
    description: str
    seed: int
    def __init__(self, steps: _Optional[_Iterable[_Union[EffectStep, _Mapping]]] = ..., input: _Optional[_Union[InputSequence, _Mapping]] = ..., output_pattern: _Optional[str] = ..., format: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., description: _Optional[str] = ..., seed: _Optional[int] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: JobSpec
    def __init__(self, job: _Optional[_Union[JobSpec, _Mapping]] = ...) -> None: ...

class JobItem(_message.Message):
    __slots__ = ("index", "frame", "input", "output", "state", "error", "last_frame")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_FRAME_FIELD_NUMBER: _ClassVar[int]
    index: int
    frame: int
    input: str
    output: str
    state: ItemState
    error: str
    last_frame: int
    def __init__(self, index: _Optional[int] = ..., frame: _Optional[int] = ..., input: _Optional[str] = ..., output: _Optional[str] = ..., state: _Optional[_Union[ItemState, str]] = ..., error: _Optional[str] = ..., last_frame: _Optional[int] = ...) -> None: ...

class JobMetadata(_message.Message):
    __slots__ = ("id", "job", "state", "total", "done", "failed", "skipped", "create_time", "update_time", "executor", "message")
    ID_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    job: JobSpec
    state: JobState
    total: int
    done: int
    failed: int
    skipped: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    executor: str
    message: str
    def __init__(self, id: _Optional[str] = ..., job: _Optional[_Union[JobSpec, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., total: _Optional[int] = ..., done: _Optional[int] = ..., failed: _Optional[int] = ..., skipped: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., executor: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[JobItem]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[JobItem, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListJobItemsRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token", "filter")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    filter: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListJobItemsResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[JobItem]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[JobItem, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RetryJobRequest(_message.Message):
    __slots__ = ("name", "states")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    name: str
    states: _containers.RepeatedScalarFieldContainer[ItemState]
    def __init__(self, name: _Optional[str] = ..., states: _Optional[_Iterable[_Union[ItemState, str]]] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("snapshot", "item")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    snapshot: JobMetadata
    item: JobItem
    def __init__(self, snapshot: _Optional[_Union[JobMetadata, _Mapping]] = ..., item: _Optional[_Union[JobItem, _Mapping]] = ...) -> None: ...
