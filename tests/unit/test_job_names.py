"""chalicelib/pipeline/job_names.py: SageMaker job names, deterministic and valid."""
from __future__ import annotations

from chalicelib.pipeline import job_names


def test_job_names_are_deterministic_and_valid():
    import re

    name = job_names.training_job("flowers", "0123456789abcdef")
    assert name == job_names.training_job("flowers", "0123456789abcdef") == "flowers-0123456789abcdef"
    long = job_names.conversion_job("a" * 80, "0123456789abcdef")
    assert len(long) <= 63 and re.match(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", long)
    assert job_names.version_from_job(long) == "0123456789abcdef"
    assert job_names.version_from_job("someone-elses-job") == ""


def test_later_attempts_get_job_names_of_their_own():
    first = job_names.training_job("flowers", "0123456789abcdef")
    second = job_names.training_job("flowers", "0123456789abcdef", 2)
    conversion = job_names.conversion_job("flowers", "0123456789abcdef", 2)
    assert first == "flowers-0123456789abcdef" and second == "flowers-0123456789abcdef-a2"
    assert conversion == "flowers-0123456789abcdef-a2-convert"
    for name in (first, second, conversion, job_names.conversion_job("a" * 80, "0123456789abcdef", 12)):
        assert len(name) <= 63 and job_names.version_from_job(name) == "0123456789abcdef"
    assert [job_names.attempt_of(n) for n in (first, second, conversion)] == [1, 2, 2]
