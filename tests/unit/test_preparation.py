"""chalicelib/pipeline/preparation.py: which errors fail a run while it is prepared, and the words its reason uses."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from chalicelib.pipeline.preparation import PreparationFailed, describe, is_environment_error, reason, step

DENIED = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")


@pytest.mark.parametrize("exc", [DENIED, ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject"),
                                 NoCredentialsError(), EndpointConnectionError(endpoint_url="https://s3"),
                                 IsADirectoryError(21, "Is a directory"), PermissionError(13, "denied")])
def test_the_worlds_errors_count(exc):
    assert is_environment_error(exc)


@pytest.mark.parametrize("exc", [TypeError("x"), KeyError("k"), ValueError("v"), AttributeError("a")])
def test_programming_errors_do_not(exc):
    assert not is_environment_error(exc)


def test_describe_names_the_code_and_operation():
    assert describe(DENIED) == "AccessDenied (GetObject): Access Denied"
    assert describe(ClientError({"Error": {"Code": "403"}}, "HeadObject")) == "403 (HeadObject): no message"
    assert describe(IsADirectoryError(21, "Is a directory")) == "IsADirectoryError: [Errno 21] Is a directory"


def test_a_step_names_itself_and_lets_programming_errors_through():
    with pytest.raises(PreparationFailed) as failed:
        with step("reading s3://b/p/training.json"):
            raise DENIED
    assert reason(failed.value) == "preparing the run failed: reading s3://b/p/training.json: AccessDenied (GetObject): Access Denied"
    assert failed.value.__cause__ is DENIED
    with pytest.raises(TypeError):
        with step("reading s3://b/p/training.json"):
            raise TypeError("a bug")
