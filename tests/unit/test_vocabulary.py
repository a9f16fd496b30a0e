"""chalicelib/contract/vocabulary.py: every shared word is defined once, and every place that needs it uses it:
the records, the OpenAPI document, the Chalice app's event source, the domain events and the CLI's list of them,
the settings schema (the Lambdas' environment, the CLI's flags), training's container paths and the web page."""
from __future__ import annotations

import ast
import dataclasses
import json
import re
from enum import StrEnum

import pytest

import app as chalice_app
from chalicelib import settings
from chalicelib.api import openapi
from chalicelib.api.web import PAGE
from chalicelib.contract import vocabulary as v
from chalicelib.contract import warm_start
from chalicelib.pipeline import debounce, domain_events, records

ENUMS = [value for value in vars(v).values() if isinstance(value, type) and issubclass(value, StrEnum) and value is not StrEnum]


def test_a_member_is_its_string_in_comparisons_json_and_text():
    for enum in ENUMS:
        for member in enum:
            assert member == member.value and hash(member) == hash(member.value)
            assert json.dumps(member) == json.dumps(member.value) and json.dumps({member: 1}) == json.dumps({member.value: 1})
            assert str(member) == f"{member}" == member.value and type(str(member)) is str
        assert all(type(word) is str for word in v.values(*enum))
    # no word stands for two ideas of one kind (an enum with two equal values would make one an alias)
    assert all(len({m.value for m in enum}) == len(enum.__members__) for enum in ENUMS)


def test_the_module_needs_the_standard_library_only():
    """The training image copies chalicelib/contract/ and nothing else of chalicelib."""
    tree = ast.parse(open(v.__file__).read())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported == {"__future__", "enum"}


def test_the_records_names_are_the_vocabularys_members():
    assert records.ACTIVE_STAGES == tuple(v.Stage)
    assert (records.REGISTERED, records.FAILED, records.SKIPPED) == tuple(v.RunOutcome)
    assert {records.APPROVED, records.PENDING, records.REJECTED} == set(v.ModelStatus)
    assert set(records.JOB_TERMINAL) | {records.JOB_IN_PROGRESS, records.JOB_STOPPING} == set(v.JobState)
    for name in ("LAUNCHING", "TRAINING", "CONVERTING", "WAITING", "JOB_COMPLETED", "APPROVED"):
        assert isinstance(getattr(records, name), StrEnum), name


def _enums(node):
    if isinstance(node, dict):
        if isinstance(node.get("enum"), list):
            yield node["enum"]
        for value in node.values():
            yield from _enums(value)
    elif isinstance(node, list):
        for value in node:
            yield from _enums(value)


def test_the_openapi_enums_are_vocabulary_words():
    document = openapi.document()
    words = {member.value for enum in ENUMS for member in enum}
    for enum in _enums(document):
        assert set(enum) <= words, enum  # a hand-written word would drift from the code's
    model_status = document["components"]["schemas"]["Model"]["properties"]["status"]["enum"]
    assert set(v.ModelStatus) <= set(model_status) and v.RunOutcome.FAILED in model_status
    assert set(model_status) - set(v.ModelStatus) - {v.RunOutcome.FAILED} <= set(v.Stage)
    start_from = document["components"]["schemas"]["RunStarted"]["properties"]["start_from"]
    assert start_from["properties"]["kind"]["enum"] == [v.StartKind.PRODUCTION, v.StartKind.IMAGENET]  # the pipeline's choices


def test_the_warm_start_decision_gives_a_start_kind():
    full = warm_start.choose(["a"], "", None, "", 5)
    warm = warm_start.choose(["a"], "p1", {"labels": ["a"]}, "s3://m/model.tar.gz", 5)
    assert (full.kind, warm.kind) == (v.StartKind.IMAGENET, v.StartKind.PRODUCTION) and warm.warm
    # what training records in metadata.json: the pipeline's warm start, none, one from the hyperparameter's folder
    recorded = [warm_start.recorded(warm.as_json(), "/prod", "", {}), warm_start.recorded(full.as_json(), "", "", {}),
                warm_start.recorded("{}", "/mine", "/mine", {})]
    assert [json.loads(json.dumps(r))["kind"] for r in recorded] == list(v.StartKind)


def test_the_app_listens_to_sagemakers_detail_types():
    (source,) = [s for s in chalice_app.app.event_sources if getattr(s, "name", "") == "on_sagemaker_job"]
    assert source.event_pattern == {"source": [v.EventSource.SAGEMAKER], "detail-type": list(v.SageMakerDetailType)}


def test_every_domain_event_type_is_built_and_the_cli_describes_each():
    from flowers_cli import events as cli_events

    built = [domain_events.run_started("d/", "v1", "job", 1, 0.0), domain_events.run_failed("d/", "v1", "job", "why", 0.0, []),
             domain_events.model_registered("d/", "v1", "job", "approved", "gate", 0.0, 0.9),
             domain_events.model_promoted("d/", "v1", "", "gate", 0.0), domain_events.model_rolled_back("d/", "v1", "v0", "why", 0.0)]
    assert [e.type for e in built] == list(v.DomainEventType)
    assert all(e.as_dict()["source"] == v.EventSource.FLOWERS for e in built)
    assert set(cli_events.WHAT) == set(v.DomainEventType)
    for event in built:
        line = cli_events.describe(json.loads(json.dumps(event.as_dict())))  # as HOME/events.jsonl holds it
        assert event.type in line and line.split(event.type, 1)[1].split()[1:], line  # the type, then what matters


def test_quantization_modes_are_the_vocabularys_everywhere():
    from flowers_cli.main import build_parser
    from training import convert

    assert settings.QUANTIZE_MODES == tuple(v.Quantization)
    assert (v.Quantization.AUTO, *convert.MODES) == tuple(v.Quantization)
    commands = next(a for a in build_parser()._actions if a.dest == "command")
    for command in ("up", "demo"):
        (flag,) = [a for a in commands.choices[command]._actions if a.dest == "quantize"]
        assert list(flag.choices) == list(v.Quantization)


def test_container_variables_and_paths_pair_up():
    from training.environment import JobEnvironment

    for channel in v.Channel:
        assert v.ContainerVariable[f"CHANNEL_{channel.name}"] == f"SM_CHANNEL_{channel.value.upper()}"
    assert v.ContainerPath.CHANNEL_TRAINING == "/opt/ml/input/data/training"
    defaults = JobEnvironment.from_env({})
    found = (defaults.input_config_dir, defaults.training_dir, defaults.model_dir, defaults.output_dir, defaults.checkpoint_dir)
    assert tuple(str(path) for path in found) == (v.ContainerPath.INPUT_CONFIG_DIR, v.ContainerPath.CHANNEL_TRAINING,
                                                  v.ContainerPath.MODEL_DIR, v.ContainerPath.OUTPUT_DIR, v.ContainerPath.CHECKPOINT_DIR)
    moved = JobEnvironment.from_env({v.ContainerVariable.MODEL_DIR.value: "/m", v.ContainerVariable.CHANNEL_TRAINING.value: "/d"})
    assert (str(moved.model_dir), str(moved.training_dir)) == ("/m", "/d")


def test_the_settings_schema_writes_what_it_reads_back():
    s = settings.Settings(mode=v.Mode.LOCAL, dataset_bucket="photos", dataset_prefix="p/", artifact_bucket="models",
                          state_table="state.db", training_image_uri="image:1", home="/h", port=0, use_spot=True,
                          min_accuracy=0.5, quantize=v.Quantization.INT8, hyperparameters={"epochs": "3"},
                          extra_hyperparameters={"seed": "1"}, watch=v.WatchMode.POLL)
    environment = settings.environment({f.name: getattr(s, f.name) for f in dataclasses.fields(s)})
    assert set(environment) == {variable.name for variable in settings.SCHEMA.values()}
    assert settings.from_environ(environment) == s
    assert settings.Settings().hyperparameters is not settings.Settings().hyperparameters


def test_the_clis_setting_flags_are_settings():
    from flowers_cli import home
    from flowers_cli.main import build_parser

    assert set(home.SETTING_FLAGS) <= set(settings.SCHEMA) - set(settings.AWS_REQUIRED)
    commands = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(home.SETTING_FLAGS) <= {a.dest for a in commands.choices["up"]._actions}


@pytest.mark.parametrize("words, enum", [
    (r"const STAGES = \{(.*?)\};", v.Stage),  # the stage shown for the running job
    (r'plain\(\{ (registered: .*?) \}, o\.status\)', v.RunOutcome),  # the last run's outcome
    (r'if \(\[(.*?)\]\.includes\(m\.status\)\)', v.ModelStatus),  # a model (not a run): it has a confusion matrix
])
def test_the_web_pages_words_are_the_vocabularys(words, enum):
    (found,) = re.findall(words, PAGE.read_text(), re.S)
    keys = re.findall(r'(?:^|[{,]\s*)"?([a-z]+)"?(?=\s*[:,]|\s*$)', found.strip())
    assert set(keys) == set(enum), found


def test_the_web_pages_next_run_words_are_the_debounces_decisions():
    running = records.Running("v", "flowers-v", v.Stage.TRAINING, 0, 0)
    states = [records.DatasetState(), records.DatasetState(pending_changes=1, last_change_at=1000.0),
              records.DatasetState(pending_changes=1), records.DatasetState(pending_changes=1, running=running)]
    decided = {debounce.decide(state, 1000.0, 600, 1).action for state in states}
    assert decided == {v.Action.IDLE, v.Action.WAIT, v.Action.START, v.Action.BUSY}
    (found,) = re.findall(r"function nextRun\(s\) \{.*?return \{(.*?)\}\[n\.action\]", PAGE.read_text(), re.S)
    assert set(re.findall(r"(?:^|,)\s*([a-z]+):", found)) == decided, found
