import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FeedbackKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEEDBACK_KIND_UNSPECIFIED: _ClassVar[FeedbackKind]
    FEEDBACK_KIND_THUMBS: _ClassVar[FeedbackKind]
    FEEDBACK_KIND_STARS: _ClassVar[FeedbackKind]
    FEEDBACK_KIND_PICK: _ClassVar[FeedbackKind]
    FEEDBACK_KIND_KEEP: _ClassVar[FeedbackKind]
    FEEDBACK_KIND_SHOWN: _ClassVar[FeedbackKind]

class Thumb(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    THUMB_UNSPECIFIED: _ClassVar[Thumb]
    THUMB_UP: _ClassVar[Thumb]
    THUMB_DOWN: _ClassVar[Thumb]

class RecommendKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECOMMEND_KIND_UNSPECIFIED: _ClassVar[RecommendKind]
    RECOMMEND_KIND_GENERATORS: _ClassVar[RecommendKind]
    RECOMMEND_KIND_PRESETS: _ClassVar[RecommendKind]
    RECOMMEND_KIND_ARTIFACTS: _ClassVar[RecommendKind]
FEEDBACK_KIND_UNSPECIFIED: FeedbackKind
FEEDBACK_KIND_THUMBS: FeedbackKind
FEEDBACK_KIND_STARS: FeedbackKind
FEEDBACK_KIND_PICK: FeedbackKind
FEEDBACK_KIND_KEEP: FeedbackKind
FEEDBACK_KIND_SHOWN: FeedbackKind
THUMB_UNSPECIFIED: Thumb
THUMB_UP: Thumb
THUMB_DOWN: Thumb
RECOMMEND_KIND_UNSPECIFIED: RecommendKind
RECOMMEND_KIND_GENERATORS: RecommendKind
RECOMMEND_KIND_PRESETS: RecommendKind
RECOMMEND_KIND_ARTIFACTS: RecommendKind

class ArtifactRef(_message.Message):
    __slots__ = ("sha256", "generator", "effect", "model_version", "seed", "parameters", "index")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    generator: str
    effect: str
    model_version: str
    seed: int
    parameters: _struct_pb2.Struct
    index: int
    def __init__(self, sha256: _Optional[str] = ..., generator: _Optional[str] = ..., effect: _Optional[str] = ..., model_version: _Optional[str] = ..., seed: _Optional[int] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., index: _Optional[int] = ...) -> None: ...

class FeedbackEvent(_message.Message):
    __slots__ = ("id", "user", "kind", "artifact", "thumb", "stars", "candidates", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    THUMB_FIELD_NUMBER: _ClassVar[int]
    STARS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    user: str
    kind: FeedbackKind
    artifact: ArtifactRef
    thumb: Thumb
    stars: int
    candidates: _containers.RepeatedCompositeFieldContainer[ArtifactRef]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., user: _Optional[str] = ..., kind: _Optional[_Union[FeedbackKind, str]] = ..., artifact: _Optional[_Union[ArtifactRef, _Mapping]] = ..., thumb: _Optional[_Union[Thumb, str]] = ..., stars: _Optional[int] = ..., candidates: _Optional[_Iterable[_Union[ArtifactRef, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordFeedbackRequest(_message.Message):
    __slots__ = ("event", "request_id")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    event: FeedbackEvent
    request_id: str
    def __init__(self, event: _Optional[_Union[FeedbackEvent, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ListFeedbackRequest(_message.Message):
    __slots__ = ("user", "page_size", "page_token")
    USER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user: str
    page_size: int
    page_token: str
    def __init__(self, user: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFeedbackResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[FeedbackEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[FeedbackEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ExportFeedbackRequest(_message.Message):
    __slots__ = ("user", "all_users")
    USER_FIELD_NUMBER: _ClassVar[int]
    ALL_USERS_FIELD_NUMBER: _ClassVar[int]
    user: str
    all_users: bool
    def __init__(self, user: _Optional[str] = ..., all_users: _Optional[bool] = ...) -> None: ...

class ForgetUserRequest(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: str
    def __init__(self, user: _Optional[str] = ...) -> None: ...

class ForgetUserResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class RecommendRequest(_message.Message):
    __slots__ = ("user", "kind", "k", "generator", "refresh")
    USER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    user: str
    kind: RecommendKind
    k: int
    generator: str
    refresh: bool
    def __init__(self, user: _Optional[str] = ..., kind: _Optional[_Union[RecommendKind, str]] = ..., k: _Optional[int] = ..., generator: _Optional[str] = ..., refresh: _Optional[bool] = ...) -> None: ...

class Preset(_message.Message):
    __slots__ = ("generator", "parameters")
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    generator: str
    parameters: _struct_pb2.Struct
    def __init__(self, generator: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Recommendation(_message.Message):
    __slots__ = ("score", "reason", "generator", "preset", "artifact")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    score: float
    reason: str
    generator: str
    preset: Preset
    artifact: ArtifactRef
    def __init__(self, score: _Optional[float] = ..., reason: _Optional[str] = ..., generator: _Optional[str] = ..., preset: _Optional[_Union[Preset, _Mapping]] = ..., artifact: _Optional[_Union[ArtifactRef, _Mapping]] = ...) -> None: ...

class RecommendResponse(_message.Message):
    __slots__ = ("recommendations", "events_used", "fitted_time")
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_USED_FIELD_NUMBER: _ClassVar[int]
    FITTED_TIME_FIELD_NUMBER: _ClassVar[int]
    recommendations: _containers.RepeatedCompositeFieldContainer[Recommendation]
    events_used: int
    fitted_time: _timestamp_pb2.Timestamp
    def __init__(self, recommendations: _Optional[_Iterable[_Union[Recommendation, _Mapping]]] = ..., events_used: _Optional[int] = ..., fitted_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
