"""Our pipeline_service.proto has Paddle Serving 0.7+'s layout (docs/design.md §6.5), field
for field: a client built on the official .proto reads what we send."""

from pdserving.proto import pipeline_service_pb2 as pb

LAYOUT = {
    "Request": {"key": 1, "value": 2, "tensors": 3, "name": 4, "method": 5, "logid": 6,
                "clientip": 7},
    "Response": {"err_no": 1, "err_msg": 2, "key": 3, "value": 4, "tensors": 5},
    "Tensor": {"int64_data": 1, "float_data": 2, "int_data": 3, "float64_data": 4,
               "uint32_data": 5, "bool_data": 6, "complex64_data": 7, "complex128_data": 8,
               "str_data": 9, "byte_data": 10, "elem_type": 20, "shape": 21, "lod": 22,
               "name": 23},
}


def test_messages_have_the_published_field_numbers():
    for message, fields in LAYOUT.items():
        descriptor = pb.DESCRIPTOR.message_types_by_name[message]
        assert {f.name: f.number for f in descriptor.fields} == fields, message


def test_service_and_method_names():
    service = pb.DESCRIPTOR.services_by_name["PipelineService"]
    assert service.full_name == "baidu.paddle_serving.pipeline_serving.PipelineService"
    (method,) = service.methods
    assert (method.name, method.input_type.name, method.output_type.name) == \
        ("inference", "Request", "Response")
