"""Pure pieces of the pipeline, without AWS: settings, debounce, promotion gate, data set
version, job names, S3 event parsing, request validation and the SageMaker request builders."""
from __future__ import annotations

import base64
import json

import pytest

from chalicelib.pipeline import debounce, job_names, promotion

from chalicelib.api import predict_request

from chalicelib import settings
from chalicelib.api.errors import ApiError
from chalicelib.adapters.aws.sagemaker_jobs import conversion_request, training_request
from chalicelib.pipeline.dataset_version import is_relevant, version_of
from chalicelib.pipeline.records import ConversionSpec, ObjectInfo, DatasetState, Running, TrainingSpec
from chalicelib.pipeline.s3_events import parse_bodies
from chalicelib.contract.training_job import METRIC_DEFINITIONS, PRESET_NAMES
from pipeline_fixtures import ENV, s3_body, s3_record, s3_test_event_body

# settings -----------------------------------------------------------------------------------
AWS_ENV = {k: v for k, v in ENV.items() if not k.startswith("AWS_")}


def test_settings_defaults_and_types():
    s = settings.from_environ(AWS_ENV)
    assert s.mode == "aws" and s.dataset_prefix == "datasets/flowers/" and s.training_instance_type == "ml.g5.xlarge"
    assert s.conversion_instance_type == "ml.m5.xlarge" and s.use_spot is False and s.preset == "resnet_v1_50"
    assert (s.max_training_time, s.quiet_period, s.min_new_images, s.min_accuracy, s.model_refresh_seconds) == (3600, 600, 1, 0.80, 60)
    assert s.dataset_uri == "s3://flowers-data/datasets/flowers/"
    with pytest.raises(Exception):
        s.quiet_period = 5  # frozen


def test_settings_parse_values():
    s = settings.from_environ(dict(AWS_ENV, USE_SPOT="true", QUIET_PERIOD="30", MIN_ACCURACY="0.9", DATASET_PREFIX="photos",
                                   PRESET="mobilenet_v2"))
    assert s.use_spot and s.quiet_period == 30 and s.min_accuracy == 0.9 and s.dataset_prefix == "photos/" and s.preset == "mobilenet_v2"


def test_settings_name_every_bad_variable():
    env = dict(AWS_ENV, QUIET_PERIOD="soon", USE_SPOT="maybe", PRESET="vgg", TRAINING_INSTANCE_TYPE="g5.xlarge")
    del env["STATE_TABLE"]
    with pytest.raises(settings.SettingsError) as caught:
        settings.from_environ(env)
    message = str(caught.value)
    for variable in ("QUIET_PERIOD", "USE_SPOT", "PRESET", "TRAINING_INSTANCE_TYPE", "STATE_TABLE"):
        assert variable in message


def test_settings_mode_default_depends_on_lambda():
    assert settings.from_environ({}).mode == "local"
    with pytest.raises(settings.SettingsError, match="DATASET_BUCKET is required"):
        settings.from_environ({"AWS_LAMBDA_FUNCTION_NAME": "flowers-dev"})


def test_preset_names_match_training():
    from training.presets import PRESETS

    assert set(PRESET_NAMES) == set(PRESETS)


def test_no_environ_reads_outside_settings():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    offenders = [str(p) for p in [root / "app.py", *sorted((root / "chalicelib").rglob("*.py"))]
                 if p.name != "settings.py" and ("os.environ" in p.read_text() or "getenv" in p.read_text())]
    assert offenders == []


# debounce -----------------------------------------------------------------------------------
def test_debounce_waits_for_quiet_then_starts():
    state = DatasetState(pending_changes=3, last_change_at=1000.0)
    assert debounce.decide(state, 1000.0 + 599, 600, 1).action == debounce.WAIT
    assert debounce.decide(state, 1000.0 + 599, 600, 1).wait_seconds == pytest.approx(1)
    assert debounce.decide(state, 1000.0 + 600, 600, 1).start


def test_debounce_needs_enough_changes_and_no_run():
    assert debounce.decide(DatasetState(), 10_000, 600, 1).action == debounce.IDLE
    assert debounce.decide(DatasetState(pending_changes=4, last_change_at=0), 10_000, 600, 5).action == debounce.IDLE
    running = Running("v", "flowers-v", "training", 0, 0)
    assert debounce.decide(DatasetState(pending_changes=9, last_change_at=0, running=running), 10_000, 600, 1).action == debounce.BUSY


def test_debounce_burst_gives_one_start():
    """3,000 uploads over 300 s, a tick every minute: one start, after the burst has been quiet."""
    starts, running = [], None
    for second in range(0, 1500, 60):  # ticks
        state = DatasetState(pending_changes=min(3000, second * 10), last_change_at=min(second, 300.0), running=running)
        if debounce.decide(state, float(second), 600, 1).start:
            starts.append(second)
            running = Running("v", "flowers-v", "training", second, second)
    assert starts == [900]  # the first tick 600 s after the last upload (t=300)


# promotion gate -----------------------------------------------------------------------------
def _meta(accuracy, baseline=None):
    metrics = {"test": {"accuracy": accuracy, "count": 150, "evaluated_on": "test"}}
    if baseline is not None:
        metrics["baseline"] = baseline
    return {"metrics": metrics}


def test_gate_first_model_needs_min_accuracy():
    assert promotion.decide(_meta(0.85), 0.80, None).approve
    result = promotion.decide(_meta(0.79), 0.80, None)
    assert not result.approve and "below min_accuracy" in result.reason


def test_gate_compares_with_production_on_same_photos():
    assert promotion.decide(_meta(0.900, {"accuracy": 0.904}), 0.80, "p").approve  # 0.4 point below: fine
    assert promotion.decide(_meta(0.900, {"accuracy": 0.905}), 0.80, "p").approve  # exactly 0.5 point
    result = promotion.decide(_meta(0.900, {"accuracy": 0.906}), 0.80, "p")
    assert not result.approve and "0.5 point below" in result.reason
    assert promotion.decide(_meta(0.95, {"accuracy": 0.90}), 0.80, "p").approve


def test_gate_without_like_for_like_comparison():
    assert promotion.decide(_meta(0.9, {"skipped": "the production model has other classes"}), 0.8, "p").approve
    assert not promotion.decide(_meta(0.9), 0.8, "p").approve
    assert not promotion.decide({"metrics": {}}, 0.8, None).approve


# data set version and names ------------------------------------------------------------------
def test_version_depends_on_keys_and_etags_only():
    a = [ObjectInfo("daisy/1.jpg", '"aa"', 10), ObjectInfo("roses/2.jpg", "bb", 11), ObjectInfo("notes.md", "cc", 1)]
    b = list(reversed(a[:2]))
    assert version_of(a, "") == version_of(b, "")
    assert version_of(a, "") != version_of([ObjectInfo("daisy/1.jpg", "ab", 10), a[1]], "")
    assert len(version_of(a, "")) == 16
    assert is_relevant("p/daisy/1.JPG", "p/") and is_relevant("p/1.txt", "p/")
    assert not is_relevant("p/daisy/", "p/") and not is_relevant("p/.DS_Store", "p/") and not is_relevant("q/1.jpg", "p/")


def test_job_names_are_deterministic_and_valid():
    import re

    name = job_names.training_job("flowers", "0123456789abcdef")
    assert name == job_names.training_job("flowers", "0123456789abcdef") == "flowers-0123456789abcdef"
    long = job_names.conversion_job("a" * 80, "0123456789abcdef")
    assert len(long) <= 63 and re.match(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", long)
    assert job_names.version_from_job(long) == "0123456789abcdef"
    assert job_names.version_from_job("someone-elses-job") == ""


# S3 events ------------------------------------------------------------------------------------
def test_parse_s3_events_filters_and_dedupes_ids():
    record = s3_record("flowers-data", "datasets/flowers/daisy/a b.jpg", 1000.0, sequencer="00AA")
    bodies = [
        s3_body(record),
        s3_body(record),  # redelivered
        s3_body(s3_record("flowers-data", "datasets/flowers/daisy/a b.jpg", 1001.0, "removed", sequencer="00AB")),
        s3_body(s3_record("other-bucket", "datasets/flowers/x.jpg", 1000.0)),
        s3_body(s3_record("flowers-data", "elsewhere/x.jpg", 1000.0)),
        s3_body(s3_record("flowers-data", "datasets/flowers/daisy/", 1000.0)),
        s3_test_event_body("flowers-data"),
        "not json",
        json.dumps({"Type": "Notification", "Message": s3_body(s3_record("flowers-data", "datasets/flowers/roses/r.png", 5.0))}),
    ]
    parsed = parse_bodies(bodies, "flowers-data", "datasets/flowers/")
    assert [c.kind for c in parsed.changes] == ["created", "created", "removed", "created"]
    assert parsed.changes[0].key == "datasets/flowers/daisy/a b.jpg"  # URL-decoded
    assert parsed.changes[0].change_id == parsed.changes[1].change_id != parsed.changes[2].change_id
    assert parsed.changes[0].event_time == pytest.approx(1000.0)
    assert parsed.test_events == 1 and parsed.ignored == 3 and len(parsed.malformed) == 1


# request validation -----------------------------------------------------------------------------
def test_predict_request_shapes():
    assert predict_request.parse("image/jpeg", b"x", None) == predict_request.PredictRequest(b"x", 5)
    assert predict_request.parse("image/png; charset=binary", b"x", {"top_k": "2"}).top_k == 2
    body = json.dumps({"image": base64.b64encode(b"abc").decode()}).encode()
    assert predict_request.parse("application/json", body, None).image == b"abc"


@pytest.mark.parametrize("content_type,body,query,status,code", [
    ("text/plain", b"x", None, 415, "unsupported_media_type"),
    (None, b"x", None, 415, "unsupported_media_type"),
    ("image/jpeg", b"", None, 400, "empty_body"),
    ("image/jpeg", b"x", {"top_k": "0"}, 400, "bad_top_k"),
    ("image/jpeg", b"x", {"top_k": "many"}, 400, "bad_top_k"),
    ("application/json", b"{", None, 400, "bad_json"),
    ("application/json", b'{"img": "x"}', None, 400, "bad_json"),
    ("application/json", b'{"image": "@@@"}', None, 400, "bad_base64"),
    ("image/jpeg", b"x" * (predict_request.MAX_IMAGE_BYTES + 1), None, 413, "too_large"),
])
def test_predict_request_errors(content_type, body, query, status, code):
    with pytest.raises(ApiError) as caught:
        predict_request.parse(content_type, body, query)
    assert (caught.value.status, caught.value.code) == (status, code)


# SageMaker requests ---------------------------------------------------------------------------
def _training_spec(use_spot):
    return TrainingSpec("flowers-0123456789abcdef", "img:1", "arn:aws:iam::123456789012:role/r", "s3://d/datasets/flowers/",
                        "s3://a/training/", "s3://a/checkpoints/flowers-0123456789abcdef/", "s3://a/tensorboard/", "ml.g5.xlarge",
                        use_spot, 3600, {"preset": "resnet_v1_50", "max_training_time": "3600"}, METRIC_DEFINITIONS,
                        {"dataset_version": "0123456789abcdef"})


def test_training_request():
    request = training_request(_training_spec(use_spot=True))
    assert request["InputDataConfig"][0]["ChannelName"] == "training"
    assert request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://d/datasets/flowers/"
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert request["EnableManagedSpotTraining"] is True
    assert request["CheckpointConfig"] == {"S3Uri": "s3://a/checkpoints/flowers-0123456789abcdef/", "LocalPath": "/opt/ml/checkpoints"}
    assert request["TensorBoardOutputConfig"]["LocalPath"] == "/opt/ml/output/tensorboard"
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS
    assert {"Key": "dataset_version", "Value": "0123456789abcdef"} in request["Tags"]
    assert all(isinstance(v, str) for v in request["HyperParameters"].values())
    plain = training_request(_training_spec(use_spot=False))
    assert "CheckpointConfig" not in plain and "EnableManagedSpotTraining" not in plain


def test_conversion_request_with_and_without_baseline():
    spec = ConversionSpec("flowers-0123456789abcdef-convert", "img:1", "arn:aws:iam::123456789012:role/r",
                          "s3://a/training/j/output/model.tar.gz", "s3://d/p/", "s3://a/models/0123456789abcdef/",
                          "", "ml.m5.xlarge", 3600, {})
    request = conversion_request(spec)
    assert request["AppSpecification"]["ContainerEntrypoint"] == [
        "convert", "/opt/ml/processing/model", "/opt/ml/processing/output", "--data", "/opt/ml/processing/data"]
    assert request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == "s3://a/models/0123456789abcdef/"
    with_baseline = conversion_request(ConversionSpec(**dict(spec.__dict__, baseline_uri="s3://a/models/feedfeedfeedfeed/")))
    assert with_baseline["AppSpecification"]["ContainerEntrypoint"][-2:] == ["--baseline", "/opt/ml/processing/baseline"]
    assert with_baseline["ProcessingInputs"][-1]["S3Input"]["S3Uri"] == "s3://a/models/feedfeedfeedfeed/"


def test_operator_requests_from_other_sites_are_told_apart():
    from chalicelib.api.operator_request import cross_site

    assert cross_site({}) == ""  # the CLI, curl: no browser headers
    assert cross_site({"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8000", "Host": "127.0.0.1:8000"}) == ""
    assert cross_site({"sec-fetch-site": "none"}) == ""  # typed into the address bar
    assert "same-site" in cross_site({"Sec-Fetch-Site": "same-site"})  # another port of localhost is the same site
    assert "localhost:8000" in cross_site({"Origin": "http://localhost:8000", "Host": "127.0.0.1:8000"})
    assert cross_site({"Origin": "null", "Host": "127.0.0.1:8000"})  # sandboxed frames and file:// pages


# retries, the gate's floors, job names for later attempts ------------------------------------
def test_failures_are_told_transient_or_permanent():
    from chalicelib.pipeline import retry

    for reason in ("CapacityError: Unable to provision requested ML compute capacity.",
                   "InternalServerError: We encountered an internal error. Please try again.",
                   "training job refused: ResourceLimitExceeded: The account-level service limit is exceeded",
                   "ThrottlingException: Rate exceeded", "Spot instance was interrupted",
                   "interrupted: flowers up stopped while it ran (kill, crash or Ctrl-C)"):
        assert retry.classify(reason) == retry.TRANSIENT, reason
    for reason in ("AlgorithmError: data set: too few images", "ClientError: Please ensure the data is valid",
                   "training job refused: ValidationException: bad role", "AccessDeniedException: no",
                   "ConversionError: no test photos", "training stopped: no reason given", "",
                   "interrupted: flowers up stopped while it ran; gave up after 3 attempts",
                   "something nobody has seen before"):
        assert retry.classify(reason) == retry.PERMANENT, reason


def test_transient_failures_retry_with_doubling_waits_up_to_the_limit():
    from chalicelib.pipeline import retry

    reason = "CapacityError: no capacity"
    assert [retry.decide(reason, attempt, 3, 300).wait_seconds for attempt in (1, 2)] == [300, 600]
    assert all(retry.decide(reason, attempt, 3, 300).again for attempt in (1, 2))
    final = retry.decide(reason, 3, 3, 300)
    assert not final.again and "3 of 3" in final.why
    assert not retry.decide("AlgorithmError: bad data", 1, 3, 300).again


def test_later_attempts_get_job_names_of_their_own():
    first = job_names.training_job("flowers", "0123456789abcdef")
    second = job_names.training_job("flowers", "0123456789abcdef", 2)
    conversion = job_names.conversion_job("flowers", "0123456789abcdef", 2)
    assert first == "flowers-0123456789abcdef" and second == "flowers-0123456789abcdef-a2"
    assert conversion == "flowers-0123456789abcdef-a2-convert"
    for name in (first, second, conversion, job_names.conversion_job("a" * 80, "0123456789abcdef", 12)):
        assert len(name) <= 63 and job_names.version_from_job(name) == "0123456789abcdef"
    assert [job_names.attempt_of(n) for n in (first, second, conversion)] == [1, 2, 2]


def _gated(test, baseline=None):
    metrics = {"test": test}
    if baseline is not None:
        metrics["baseline"] = baseline
    return {"metrics": metrics}


def test_the_gate_wants_enough_test_photos_and_no_class_left_behind():
    enough = {"accuracy": 0.95, "count": 200, "evaluated_on": "test",
              "per_class": {"daisy": {"recall": 0.97}, "roses": {"recall": 0.80}}}
    tiny = promotion.decide(_gated({"accuracy": 1.0, "count": 1}), 0.8, None, min_test_images=50)
    assert not tiny.approve and "only 1 test photos" in tiny.reason and "min_test_images 50" in tiny.reason
    assert not promotion.decide(_gated({"accuracy": 1.0}), 0.8, None, min_test_images=50).approve  # count unknown
    assert promotion.decide(_gated(enough), 0.8, None, min_test_images=50).approve
    # Better on average than production, but roses fall 15 points: a person decides.
    baseline = {"accuracy": 0.93, "per_class_recall": {"daisy": 0.90, "roses": 0.95}}
    dropped = promotion.decide(_gated(enough, baseline), 0.8, "p", min_test_images=50, max_class_drop=0.10)
    assert not dropped.approve and "recall of roses falls from 0.950" in dropped.reason
    assert promotion.decide(_gated(enough, baseline), 0.8, "p", min_test_images=50, max_class_drop=0.20).approve
    baseline_ok = {"accuracy": 0.93, "per_class_recall": {"daisy": 0.90, "roses": 0.85}}
    assert promotion.decide(_gated(enough, baseline_ok), 0.8, "p", min_test_images=50, max_class_drop=0.10).approve


@pytest.mark.parametrize("metadata", [
    None, "text", [], {"metrics": None}, {"metrics": "x"}, {"metrics": {"test": None}}, {"metrics": {"test": "0.9"}},
    {"metrics": {"test": {"accuracy": "0.9", "count": "many"}}}, {"metrics": {"test": {"accuracy": True}}},
    {"metrics": {"test": {"accuracy": 0.9, "count": 100, "per_class": "x"}, "baseline": "y"}},
    {"metrics": {"test": {"accuracy": 0.9, "count": 100, "per_class": {"a": None}}, "baseline": {"accuracy": 0.8, "per_class_recall": []}}},
])
def test_the_gate_reads_metadata_of_any_shape_without_raising(metadata):
    result = promotion.decide(metadata, 0.8, "production", min_test_images=50)
    assert isinstance(result.approve, bool) and result.reason


def test_requests_read_the_runs_manifest_when_it_has_one():
    from chalicelib.pipeline import manifest

    spec = _training_spec(use_spot=False)
    assert training_request(spec)["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataType"] == "S3Prefix"
    assert "Environment" not in training_request(spec)  # a run launched before manifests: the prefix, as before
    with_manifest = TrainingSpec(**dict(spec.__dict__, manifest_uri="s3://a/manifests/v.json", manifest_sha256="ff" * 32,
                                        channel_manifest_uri="s3://a/manifests/v.manifest"))
    request = training_request(with_manifest)
    assert request["InputDataConfig"][0]["DataSource"]["S3DataSource"] == {
        "S3DataType": "ManifestFile", "S3Uri": "s3://a/manifests/v.manifest", "S3DataDistributionType": "FullyReplicated"}
    assert request["Environment"] == {"FLOWERS_MANIFEST_URI": "s3://a/manifests/v.json", "FLOWERS_MANIFEST_SHA256": "ff" * 32}
    conversion = ConversionSpec("flowers-0123456789abcdef-convert", "img:1", "arn:aws:iam::123456789012:role/r",
                                "s3://a/training/j/output/model.tar.gz", "s3://d/p/", "s3://a/models/0123456789abcdef/",
                                "", "ml.m5.xlarge", 3600, {}, manifest_uri="s3://a/manifests/v.json",
                                channel_manifest_uri="s3://a/manifests/v.manifest")
    data = conversion_request(conversion)["ProcessingInputs"][1]
    assert data["InputName"] == "data" and data["S3Input"]["S3DataType"] == "ManifestFile"
    assert data["S3Input"]["S3Uri"] == "s3://a/manifests/v.manifest"

    # The record: sorted by key, the same bytes for the same listing; S3's "null" version id is no version id.
    objects = [ObjectInfo("roses/b.jpg", '"bb"', 2, "null"), ObjectInfo("daisy/a.jpg", "aa", 1, "3HL4kqtJlcpXroDTDmJ")]
    raw = manifest.record("s3://d/p/", "0123456789abcdef", objects)
    assert raw == manifest.record("s3://d/p/", "0123456789abcdef", list(reversed(objects)))
    parsed = manifest.parse(raw)
    assert parsed["files"] == [{"key": "daisy/a.jpg", "etag": "aa", "size": 1, "version_id": "3HL4kqtJlcpXroDTDmJ"},
                               {"key": "roses/b.jpg", "etag": "bb", "size": 2}]
    assert (parsed["count"], parsed["bytes"], parsed["dataset_uri"]) == (2, 3, "s3://d/p/")
    assert json.loads(manifest.channel("s3://d/p/", objects)) == [{"prefix": "s3://d/p/"}, "daisy/a.jpg", "roses/b.jpg"]
    with pytest.raises(manifest.ManifestError):
        manifest.parse(b'[{"prefix": "s3://d/p/"}]')
    assert manifest.recorded({"manifest": {"uri": "s3://a/m.json", "sha256": "x"}}) == ("s3://a/m.json", "x")
    assert manifest.recorded({"manifest": None}) == manifest.recorded({}) == ("", "")
