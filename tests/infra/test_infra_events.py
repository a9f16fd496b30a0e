"""The domain events' bus in the stack (infra/): the functions know it, only they publish flowers events on it,
and the example rule mails a failed run's reason to the alarm topic."""
from __future__ import annotations

from test_infra import actions_of, cdk_out, functions, raw, resources, statements  # noqa: F401  (fixtures)


def _bus(raw):  # noqa: F811
    (bus_id, bus), = resources(raw, "AWS::Events::EventBus").items()
    return bus_id, bus


def test_the_bus_is_named_after_the_stack_and_every_function_gets_its_name(raw):  # noqa: F811
    bus_id, bus = _bus(raw)
    assert bus["Properties"]["Name"] == "flowers-events"
    for name, function in functions(raw).items():
        assert function["Properties"]["Environment"]["Variables"]["EVENT_BUS_NAME"] == {"Ref": bus_id}, name
    assert raw["Outputs"]["EventBusName"]["Value"] == {"Ref": bus_id}


def test_only_the_pipeline_and_api_roles_publish_flowers_events_on_the_bus(raw):  # noqa: F811
    bus_id, _ = _bus(raw)
    role_of = {name: f["Properties"]["Role"]["Fn::GetAtt"][0] for name, f in functions(raw).items()}
    for name in ("Tick", "APIHandler"):
        publish = [s for s in statements(raw, role_of[name]) if "events:PutEvents" in actions_of([s])]
        assert len(publish) == 1 and publish[0]["Resource"] == {"Fn::GetAtt": [bus_id, "Arn"]}
        assert publish[0]["Condition"] == {"StringEquals": {"events:source": "flowers"}}
    assert "events:PutEvents" not in actions_of(statements(raw, role_of["OnUpload"]))
    (policy,) = resources(raw, "AWS::Events::EventBusPolicy").values()
    statement = policy["Properties"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "events:PutEvents"
    assert statement["Condition"]["StringEquals"] == {"events:source": "flowers"}
    assert statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == [
        {"Fn::GetAtt": [role_of["Tick"], "Arn"]}, {"Fn::GetAtt": [role_of["APIHandler"], "Arn"]}]


def test_the_example_rule_sends_failed_runs_with_their_reason_to_the_alarm_topic(raw):  # noqa: F811
    bus_id, _ = _bus(raw)
    rules = [r["Properties"] for r in resources(raw, "AWS::Events::Rule").values()
             if r["Properties"].get("EventBusName") == {"Ref": bus_id}]
    assert len(rules) == 1 and rules[0]["EventPattern"] == {"source": ["flowers"], "detail-type": ["Run Failed"]}
    (target,) = rules[0]["Targets"]
    assert target["Arn"]["Ref"].startswith("AlarmTopic")
    assert target["InputTransformer"]["InputPathsMap"]["detail-reason"] == "$.detail.reason"


def test_batch_classification_photos_reach_the_upload_function_which_writes_only_predictions(raw):  # noqa: F811
    (bucket,) = [r for lid, r in resources(raw, "AWS::S3::Bucket").items() if lid.startswith("DatasetBucket")]
    configurations = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    found = {(c["Event"], c["Filter"]["S3Key"]["Rules"][0]["Value"]) for c in configurations}
    assert found == {("s3:ObjectCreated:*", "datasets/flowers/"), ("s3:ObjectRemoved:*", "datasets/flowers/"),
                     ("s3:ObjectCreated:*", "classify/")}
    upload = functions(raw)["OnUpload"]
    role = upload["Properties"]["Role"]["Fn::GetAtt"][0]
    assert upload["Properties"]["MemorySize"] >= 1024  # LiteRT and the model
    writes = [s for s in statements(raw, role) if "s3:PutObject" in actions_of([s])]
    assert len(writes) == 1 and str(writes[0]["Resource"]).count("/predictions/*") == 1


def test_the_rules_and_the_functions_environment_use_the_vocabulary_and_the_settings_schema(raw):  # noqa: F811
    from chalicelib import settings
    from chalicelib.contract.vocabulary import DomainEventType, EventSource, JobState, SageMakerDetailType

    patterns = [r["Properties"]["EventPattern"] for r in resources(raw, "AWS::Events::Rule").values()
                if "EventPattern" in r["Properties"]]
    patterns += [e["Properties"]["Pattern"] for f in functions(raw).values()
                 for e in f["Properties"].get("Events", {}).values() if e["Type"] == "CloudWatchEvent"]
    sagemaker = [p for p in patterns if p["source"] == [EventSource.SAGEMAKER]]
    flowers = [p for p in patterns if p["source"] == [EventSource.FLOWERS]]
    assert len(sagemaker) == 2 and len(flowers) == 1 and len(patterns) == 3  # the alarm's rule, the app's; the example
    for pattern in sagemaker:
        assert pattern["detail-type"] == list(SageMakerDetailType)
        for match in pattern.get("detail", {}).get("$or", []):
            assert {s for key, states in match.items() if key.endswith("JobStatus") for s in states} <= set(JobState)
    assert set(flowers[0]["detail-type"]) <= set(DomainEventType)
    schema = {variable.name for variable in settings.SCHEMA.values()}
    for name, function in functions(raw).items():
        assert set(function["Properties"]["Environment"]["Variables"]) - schema == {"POWERTOOLS_LOG_LEVEL"}, name
