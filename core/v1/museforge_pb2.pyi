from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListPluginsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PluginInfo(_message.Message):
    __slots__ = ("name", "version", "hooks", "error", "source", "generators", "effects")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HOOKS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    GENERATORS_FIELD_NUMBER: _ClassVar[int]
    EFFECTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    hooks: _containers.RepeatedScalarFieldContainer[str]
    error: str
    source: str
    generators: _containers.RepeatedScalarFieldContainer[str]
    effects: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., hooks: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ..., source: _Optional[str] = ..., generators: _Optional[_Iterable[str]] = ..., effects: _Optional[_Iterable[str]] = ...) -> None: ...

class ListPluginsResponse(_message.Message):
    __slots__ = ("plugins",)
    PLUGINS_FIELD_NUMBER: _ClassVar[int]
    plugins: _containers.RepeatedCompositeFieldContainer[PluginInfo]
    def __init__(self, plugins: _Optional[_Iterable[_Union[PluginInfo, _Mapping]]] = ...) -> None: ...

class ListGeneratorsRequest(_message.Message):
    __slots__ = ("modality",)
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    modality: str
    def __init__(self, modality: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "provider", "sha256", "ready", "error", "training_data")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TRAINING_DATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    provider: str
    sha256: str
    ready: bool
    error: str
    training_data: _containers.RepeatedCompositeFieldContainer[TrainingData]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., provider: _Optional[str] = ..., sha256: _Optional[str] = ..., ready: _Optional[bool] = ..., error: _Optional[str] = ..., training_data: _Optional[_Iterable[_Union[TrainingData, _Mapping]]] = ...) -> None: ...

class TrainingData(_message.Message):
    __slots__ = ("name", "licence", "attribution", "commercial_use", "registry", "package", "version", "sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LICENCE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    COMMERCIAL_USE_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    licence: str
    attribution: str
    commercial_use: bool
    registry: str
    package: str
    version: str
    sha256: str
    def __init__(self, name: _Optional[str] = ..., licence: _Optional[str] = ..., attribution: _Optional[str] = ..., commercial_use: _Optional[bool] = ..., registry: _Optional[str] = ..., package: _Optional[str] = ..., version: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class GeneratorInfo(_message.Message):
    __slots__ = ("name", "modality", "description", "parameters_schema", "formats", "models", "plugin", "available", "max_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    FORMATS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    modality: str
    description: str
    parameters_schema: str
    formats: _containers.RepeatedScalarFieldContainer[str]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    plugin: str
    available: bool
    max_count: int
    def __init__(self, name: _Optional[str] = ..., modality: _Optional[str] = ..., description: _Optional[str] = ..., parameters_schema: _Optional[str] = ..., formats: _Optional[_Iterable[str]] = ..., models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., plugin: _Optional[str] = ..., available: _Optional[bool] = ..., max_count: _Optional[int] = ...) -> None: ...

class ListGeneratorsResponse(_message.Message):
    __slots__ = ("generators",)
    GENERATORS_FIELD_NUMBER: _ClassVar[int]
    generators: _containers.RepeatedCompositeFieldContainer[GeneratorInfo]
    def __init__(self, generators: _Optional[_Iterable[_Union[GeneratorInfo, _Mapping]]] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("generator", "parameters", "seed", "count", "format")
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    generator: str
    parameters: _struct_pb2.Struct
    seed: int
    count: int
    format: str
    def __init__(self, generator: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., seed: _Optional[int] = ..., count: _Optional[int] = ..., format: _Optional[str] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("data", "media_type", "format", "index", "filename", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATA_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    media_type: str
    format: str
    index: int
    filename: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, data: _Optional[bytes] = ..., media_type: _Optional[str] = ..., format: _Optional[str] = ..., index: _Optional[int] = ..., filename: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("artifacts", "seed")
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    seed: int
    def __init__(self, artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ..., seed: _Optional[int] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("completed", "total", "stage", "message")
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    completed: int
    total: int
    stage: str
    message: str
    def __init__(self, completed: _Optional[int] = ..., total: _Optional[int] = ..., stage: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("index", "data", "media_type", "offset")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    index: int
    data: bytes
    media_type: str
    offset: int
    def __init__(self, index: _Optional[int] = ..., data: _Optional[bytes] = ..., media_type: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class GenerateEvent(_message.Message):
    __slots__ = ("progress", "artifact", "seed", "chunk")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    artifact: Artifact
    seed: int
    chunk: Chunk
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., artifact: _Optional[_Union[Artifact, _Mapping]] = ..., seed: _Optional[int] = ..., chunk: _Optional[_Union[Chunk, _Mapping]] = ...) -> None: ...

class ListEffectsRequest(_message.Message):
    __slots__ = ("modality",)
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    modality: str
    def __init__(self, modality: _Optional[str] = ...) -> None: ...

class EffectInfo(_message.Message):
    __slots__ = ("name", "modality", "description", "parameters_schema", "formats", "input_formats", "models", "plugin", "available", "min_inputs", "max_inputs")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODALITY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    FORMATS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FORMATS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    MIN_INPUTS_FIELD_NUMBER: _ClassVar[int]
    MAX_INPUTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    modality: str
    description: str
    parameters_schema: str
    formats: _containers.RepeatedScalarFieldContainer[str]
    input_formats: _containers.RepeatedScalarFieldContainer[str]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    plugin: str
    available: bool
    min_inputs: int
    max_inputs: int
    def __init__(self, name: _Optional[str] = ..., modality: _Optional[str] = ..., description: _Optional[str] = ..., parameters_schema: _Optional[str] = ..., formats: _Optional[_Iterable[str]] = ..., input_formats: _Optional[_Iterable[str]] = ..., models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., plugin: _Optional[str] = ..., available: _Optional[bool] = ..., min_inputs: _Optional[int] = ..., max_inputs: _Optional[int] = ...) -> None: ...

class ListEffectsResponse(_message.Message):
    __slots__ = ("effects",)
    EFFECTS_FIELD_NUMBER: _ClassVar[int]
    effects: _containers.RepeatedCompositeFieldContainer[EffectInfo]
    def __init__(self, effects: _Optional[_Iterable[_Union[EffectInfo, _Mapping]]] = ...) -> None: ...

class MediaInput(_message.Message):
    __slots__ = ("data", "name")
    DATA_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    name: str
    def __init__(self, data: _Optional[bytes] = ..., name: _Optional[str] = ...) -> None: ...

class ApplyEffectRequest(_message.Message):
    __slots__ = ("effect", "parameters", "inputs", "format", "seed")
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    effect: str
    parameters: _struct_pb2.Struct
    inputs: _containers.RepeatedCompositeFieldContainer[MediaInput]
    format: str
    seed: int
    def __init__(self, effect: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., inputs: _Optional[_Iterable[_Union[MediaInput, _Mapping]]] = ..., format: _Optional[str] = ..., seed: _Optional[int] = ...) -> None: ...

class ApplyEffectResponse(_message.Message):
    __slots__ = ("artifacts", "seed")
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    seed: int
    def __init__(self, artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ..., seed: _Optional[int] = ...) -> None: ...

class ApplyEffectEvent(_message.Message):
    __slots__ = ("progress", "artifact", "seed")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    artifact: Artifact
    seed: int
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., artifact: _Optional[_Union[Artifact, _Mapping]] = ..., seed: _Optional[int] = ...) -> None: ...

class GetModelStatisticsRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class StageDuration(_message.Message):
    __slots__ = ("count", "ns")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    NS_FIELD_NUMBER: _ClassVar[int]
    count: int
    ns: int
    def __init__(self, count: _Optional[int] = ..., ns: _Optional[int] = ...) -> None: ...

class ModelStatistics(_message.Message):
    __slots__ = ("model", "version", "provider", "request_count", "failure_count", "execution_count", "inference_count", "queue", "compute_input", "compute_infer", "compute_output", "executions_by_batch_size", "batching", "max_batch_size", "max_queue_delay_us")
    class ExecutionsByBatchSizeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_INPUT_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_INFER_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_BY_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    BATCHING_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_DELAY_US_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    provider: str
    request_count: int
    failure_count: int
    execution_count: int
    inference_count: int
    queue: StageDuration
    compute_input: StageDuration
    compute_infer: StageDuration
    compute_output: StageDuration
    executions_by_batch_size: _containers.ScalarMap[int, int]
    batching: bool
    max_batch_size: int
    max_queue_delay_us: int
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., provider: _Optional[str] = ..., request_count: _Optional[int] = ..., failure_count: _Optional[int] = ..., execution_count: _Optional[int] = ..., inference_count: _Optional[int] = ..., queue: _Optional[_Union[StageDuration, _Mapping]] = ..., compute_input: _Optional[_Union[StageDuration, _Mapping]] = ..., compute_infer: _Optional[_Union[StageDuration, _Mapping]] = ..., compute_output: _Optional[_Union[StageDuration, _Mapping]] = ..., executions_by_batch_size: _Optional[_Mapping[int, int]] = ..., batching: _Optional[bool] = ..., max_batch_size: _Optional[int] = ..., max_queue_delay_us: _Optional[int] = ...) -> None: ...

class GetModelStatisticsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelStatistics]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelStatistics, _Mapping]]] = ...) -> None: ...
