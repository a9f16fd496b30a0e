"""Incremental retraining's warm start (issue 21): the pure decision (chalicelib/contract/warm_start.py).
The job specification on moto and training's side: tests/integration/test_warm_start_channel.py."""
from __future__ import annotations

import json

import pytest

from chalicelib.contract.warm_start import (
    CLASSES_DIFFER,
    FORCED_BY_HYPERPARAMETER,
    FORCED_FULL,
    StartFrom,
    choose,
    dataset_classes,
    folder_to_load,
    recorded,
    same_classes,
    skipped,
    started_warm,
    training_hyperparameters,
)

LABELS = ["daisy", "roses"]


def meta(labels=LABELS, chain=None, warm=True):
    training = {} if chain is None else {"start_from": {"kind": "production" if warm else "imagenet", "warm": warm, "chain": chain}}
    return {"labels": list(labels), "source_job": "job-1", "training": training}


def test_same_classes_warm_start_from_production_and_the_chain_counts():
    decision = choose(LABELS, "v1", meta(), "s3://a/training/job-1/output/model.tar.gz", 5)
    assert decision.warm and decision.chain == 1 and decision.production_version == "v1"
    assert decision.model_uri == "s3://a/training/job-1/output/model.tar.gz" and "same classes" in decision.reason
    assert choose(LABELS, "v2", meta(chain=3), "s3://m", 5).chain == 4
    assert choose(LABELS, "v2", meta(chain=3, warm=False), "s3://m", 5).chain == 1  # production itself was a full run


def test_every_nth_run_is_a_full_one():
    """FULL_RETRAIN_EVERY=5: one full run, then four warm ones, then a full one again."""
    chain, kinds = 0, []
    for run in range(11):
        decision = choose(LABELS, f"v{run}", meta(chain=chain) if run else None, "s3://m", 5) if run else choose(LABELS, "", None, "", 5)
        kinds.append(decision.kind)
        chain = decision.chain
    assert kinds == ["imagenet"] + ["production"] * 4 + ["imagenet"] + ["production"] * 4 + ["imagenet"]
    full = choose(LABELS, "v4", meta(chain=4), "s3://m", 5)
    assert not full.warm and "periodic full retrain" in full.reason and full.model_uri == ""
    assert not choose(LABELS, "v1", meta(), "s3://m", 1).warm  # 1: every run is a full one
    forced = choose(LABELS, "v1", meta(), "s3://m", 5, "none")  # training.json's {"warm_start": "none"}
    assert not forced.warm and "forced" in forced.reason
    assert not choose(LABELS, "v1", meta(), "s3://m", 5, "/opt/ml/input/data/mine").warm  # its own folder: training's business


def test_a_run_forced_full_by_hand_starts_from_imagenet_whatever_else_holds():
    """flowers retrain --full / POST /runs {"full": true}: this run from ImageNet, with the reason; without it, the same
    facts warm-start (so the flag, not the facts, made the difference)."""
    assert choose(LABELS, "v1", meta(chain=1), "s3://m", 5).warm
    for hyperparameter in ("", "none", "/opt/ml/input/data/mine"):
        forced = choose(LABELS, "v1", meta(chain=1), "s3://m", 5, hyperparameter, forced_full=True)
        assert forced == StartFrom("imagenet", FORCED_FULL) and not forced.warm and forced.model_uri == "" and forced.chain == 0
    assert "flowers retrain --full" in FORCED_FULL
    assert json.loads(choose([], "", None, "", 1, forced_full=True).as_json()) == {
        "kind": "imagenet", "reason": FORCED_FULL, "chain": 0, "production_version": ""}  # what FLOWERS_START_FROM carries


def test_a_forced_full_run_keeps_training_from_loading_a_folder_the_hyperparameter_names():
    mine = {"preset": "mobilenet_v2", "warm_start": "/opt/ml/input/data/mine"}
    assert training_hyperparameters(mine, forced_full=True) == {"preset": "mobilenet_v2", "warm_start": "none"}
    assert training_hyperparameters(mine, forced_full=False) == mine  # not forced: training's business, as before
    plain = {"preset": "mobilenet_v2"}
    assert training_hyperparameters(plain, forced_full=True) == plain  # nothing to stop: metadata keeps FORCED_FULL's reason
    assert training_hyperparameters({"warm_start": "None"}, forced_full=True) == {"warm_start": "None"}


@pytest.mark.parametrize("classes, version, metadata, uri, why", [
    (LABELS, "", None, "", "no production model"),
    (["daisy", "roses", "tulips"], "v1", meta(), "s3://m", "added tulips"),
    (["daisy"], "v1", meta(), "s3://m", "removed roses"),
    (LABELS, "v1", None, "s3://m", "no readable metadata.json"),
    (LABELS, "v1", meta(), "", "trained weights are not available"),
])
def test_otherwise_imagenet_and_the_reason_says_why(classes, version, metadata, uri, why):
    decision = choose(classes, version, metadata, uri, 5)
    assert decision.kind == "imagenet" and not decision.warm and why in decision.reason and decision.model_uri == ""


def test_dataset_classes_are_the_class_folders_and_name_txt_labels_leave_the_check_to_training():
    assert dataset_classes(["roses/a.jpg", "daisy/b.jpg", "roses/c.jpg", "training.json"]) == ["daisy", "roses"]
    assert dataset_classes(["a.jpg", "a.txt"]) == []
    decision = choose([], "v1", meta(), "s3://m", 5)
    assert decision.warm and "training compares them" in decision.reason


def test_one_class_rule_for_the_pipeline_and_training():
    """Same names in the same order (the head's outputs are the sorted labels): the pipeline applies it to class
    folders, training to the labels it read (name.txt data sets, a warm_start folder)."""
    assert same_classes(LABELS, list(LABELS))
    assert not same_classes(["roses", "daisy"], LABELS) and not same_classes(["daisy"], LABELS)
    reordered = choose(LABELS, "v1", meta(labels=["roses", "daisy"]), "s3://m", 5)
    assert not reordered.warm and "their order differs" in reordered.reason


def test_what_the_job_makes_of_the_decision():
    channel = "/opt/ml/input/data/production"
    assert folder_to_load("", channel) == channel  # the pipeline passed production: load it
    assert folder_to_load("", "") == ""  # a full run: the pipeline passed no channel
    assert folder_to_load("none", channel) == "" and folder_to_load(" NONE ", channel) == ""  # forced full, whatever was passed
    assert folder_to_load("/opt/ml/mine", channel) == "/opt/ml/mine"  # the hyperparameter's own model wins
    assert skipped(CLASSES_DIFFER) == "skipped: classes differ"
    assert started_warm(channel) and not started_warm("") and not started_warm(skipped("bad file"))
    decision = StartFrom("imagenet", "the warm_start hyperparameter names its own model (/opt/ml/mine)").as_json()
    mine = recorded(decision, "/opt/ml/mine", "/opt/ml/mine", {"head_epochs": 8, "epochs": 1, "fine_tune_lr_scale": 0.02})
    assert (mine["kind"], mine["warm"], mine["chain"], mine["head_epochs"]) == ("warm_start", True, 1, 8)
    assert recorded("not json", "", "none", {})["reason"] == FORCED_BY_HYPERPARAMETER
