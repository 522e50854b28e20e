"""The few Caffe protobuf messages needed to read a ``.caffemodel``, built at run time.

No Caffe install and no ``protoc``: the message types are declared with
``descriptor_pb2`` and turned into classes with ``message_factory``. Only the
fields that carry weights are declared (field numbers as in BVLC's
``caffe.proto``); protobuf skips every other field of the file.

    NetParameter:     name = 1, layers = 2 (V1LayerParameter, old format),
                      input = 3, layer = 100 (LayerParameter)
    LayerParameter:   name = 1, type = 2 (string), bottom = 3, top = 4, blobs = 7
    V1LayerParameter: bottom = 2, top = 3, name = 4, type = 5 (enum LayerType,
                      read as its integer), blobs = 6
    BlobProto:        num = 1, channels = 2, height = 3, width = 4 (legacy 4-D shape),
                      data = 5 (packed float), diff = 6, shape = 7,
                      double_data = 8 (packed double), double_diff = 9
    BlobShape:        dim = 1 (packed int64)
"""
from functools import lru_cache
from typing import Any, Dict

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = 'mmft_caffe'

# (name, number, label, type, message type name or None, packed)
_MESSAGES = {
    'BlobShape': [('dim', 1, _F.LABEL_REPEATED, _F.TYPE_INT64, None, True)],
    'BlobProto': [
        ('num', 1, _F.LABEL_OPTIONAL, _F.TYPE_INT32, None, False),
        ('channels', 2, _F.LABEL_OPTIONAL, _F.TYPE_INT32, None, False),
        ('height', 3, _F.LABEL_OPTIONAL, _F.TYPE_INT32, None, False),
        ('width', 4, _F.LABEL_OPTIONAL, _F.TYPE_INT32, None, False),
        ('data', 5, _F.LABEL_REPEATED, _F.TYPE_FLOAT, None, True),
        ('diff', 6, _F.LABEL_REPEATED, _F.TYPE_FLOAT, None, True),
        ('shape', 7, _F.LABEL_OPTIONAL, _F.TYPE_MESSAGE, 'BlobShape', False),
        ('double_data', 8, _F.LABEL_REPEATED, _F.TYPE_DOUBLE, None, True),
        ('double_diff', 9, _F.LABEL_REPEATED, _F.TYPE_DOUBLE, None, True),
    ],
    'LayerParameter': [
        ('name', 1, _F.LABEL_OPTIONAL, _F.TYPE_STRING, None, False),
        ('type', 2, _F.LABEL_OPTIONAL, _F.TYPE_STRING, None, False),
        ('bottom', 3, _F.LABEL_REPEATED, _F.TYPE_STRING, None, False),
        ('top', 4, _F.LABEL_REPEATED, _F.TYPE_STRING, None, False),
        ('blobs', 7, _F.LABEL_REPEATED, _F.TYPE_MESSAGE, 'BlobProto', False),
    ],
    'V1LayerParameter': [
        ('bottom', 2, _F.LABEL_REPEATED, _F.TYPE_STRING, None, False),
        ('top', 3, _F.LABEL_REPEATED, _F.TYPE_STRING, None, False),
        ('name', 4, _F.LABEL_OPTIONAL, _F.TYPE_STRING, None, False),
        ('type', 5, _F.LABEL_OPTIONAL, _F.TYPE_INT32, None, False),
        ('blobs', 6, _F.LABEL_REPEATED, _F.TYPE_MESSAGE, 'BlobProto', False),
    ],
    'NetParameter': [
        ('name', 1, _F.LABEL_OPTIONAL, _F.TYPE_STRING, None, False),
        ('layers', 2, _F.LABEL_REPEATED, _F.TYPE_MESSAGE, 'V1LayerParameter', False),
        ('input', 3, _F.LABEL_REPEATED, _F.TYPE_STRING, None, False),
        ('layer', 100, _F.LABEL_REPEATED, _F.TYPE_MESSAGE, 'LayerParameter', False),
    ],
}

#: V1LayerParameter.LayerType values of the layers that hold weights.
V1_LAYER_TYPES = {4: 'Convolution', 14: 'InnerProduct', 39: 'Deconvolution'}


@lru_cache(maxsize=1)
def caffe_messages() -> Dict[str, Any]:
    """Message classes by name: BlobShape, BlobProto, LayerParameter,
    V1LayerParameter, NetParameter."""
    file_proto = descriptor_pb2.FileDescriptorProto(
        name='mmft_caffe_subset.proto', package=_PACKAGE, syntax='proto2')
    for message_name, fields in _MESSAGES.items():
        message = file_proto.message_type.add(name=message_name)
        for name, number, label, ftype, type_name, packed in fields:
            field = message.field.add(name=name, number=number, label=label, type=ftype)
            if type_name:
                field.type_name = f'.{_PACKAGE}.{type_name}'
            if packed:
                field.options.packed = True
    # a private pool, so the names never clash with a real caffe_pb2 in the same process
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f'{_PACKAGE}.{name}'))
            for name in _MESSAGES}
